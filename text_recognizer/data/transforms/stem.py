"""Turn any grayscale crop into the fixed-size tensor a network reads.

Input convention (datasets and user scans alike): dark ink on light paper. The stem resizes to
the network's height keeping the aspect ratio, squeezes lines that are too wide, pads with paper on
the right (lines) or bottom-right (paragraphs), and inverts so ink is near 1 and paper near 0.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from text_recognizer.data.sampler import content_widths


class ImageStem:
    """Grayscale image (PIL or uint8 array) -> float tensor (1, height, width) in [0, 1]."""

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width

    def fit(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """Resize and pad to (height, width), still uint8 and dark-on-light."""
        if isinstance(image, np.ndarray):
            if image.shape == (self.height, self.width) and image.dtype == np.uint8:
                return image
            image = Image.fromarray(image.astype(np.uint8))
        image = image.convert("L")
        scale = min(self.height / image.height, self.width / image.width)
        if image.height > self.height or image.width > self.width or self.height > image.height:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(image)
        paper = int(np.percentile(pixels, 90))
        canvas = np.full((self.height, self.width), paper, dtype=np.uint8)
        canvas[: pixels.shape[0], : pixels.shape[1]] = pixels
        return canvas

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(self.fit(image)))
        return (1.0 - pixels.float() / 255.0).unsqueeze(0)


def crop_to_content(
    images: torch.Tensor, multiple: int = 32, contrast: float = 0.3
) -> torch.Tensor:
    """Drop the paper columns that every image of a (b, 1, h, w) batch has on its right.

    Lines are left-aligned and padded to a fixed width that most do not need; cropping the batch
    to its widest line (rounded up to `multiple`) saves the encoder that empty work. A column holds
    ink where some pixel is `contrast` brighter than its image's median (the paper).
    """
    paper = images.flatten(1).median(dim=1).values.view(-1, 1, 1, 1)
    ink_columns = ((images - paper) > contrast).any(dim=(0, 1, 2)).nonzero()
    if ink_columns.numel() == 0:
        return images[..., :multiple]
    width = min(
        images.shape[-1], -(-(int(ink_columns.max()) + 1 + multiple // 4) // multiple) * multiple
    )
    return images[..., :width]


class EvalTransform:
    """What validation and test apply, so that inference applies exactly the same: the stem per
    image, then, for datamodules that crop their batches (`crop_width`), `crop_to_content`."""

    def __init__(self, height: int, width: int, crop_width: bool) -> None:
        self.stem = ImageStem(height, width)
        self.crop_width = crop_width

    def params(self) -> dict[str, int | bool]:
        """Plain values that rebuild this transform (`EvalTransform(**params)`)."""
        return {"height": self.stem.height, "width": self.stem.width, "crop_width": self.crop_width}

    def order(self, fitted: list[np.ndarray]) -> np.ndarray:
        """Indices of stem-fitted images by content width when cropping, as the validation
        sampler groups them, so a batch cropped to its widest image holds little padding."""
        if not self.crop_width or not fitted:
            return np.arange(len(fitted))
        return np.argsort(content_widths(np.stack(fitted)), kind="stable")

    def batch(self, fitted: list[np.ndarray]) -> torch.Tensor:
        """Stem-fitted uint8 images -> the (b, 1, height, w) float batch the network reads."""
        images = torch.stack([self.stem(image) for image in fitted])
        return crop_to_content(images) if self.crop_width else images
