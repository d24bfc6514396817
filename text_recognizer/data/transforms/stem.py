"""Turn any grayscale crop into the fixed-size tensor a network reads.

Input convention (datasets and user scans alike): dark ink on light paper. The stem scales the
crop uniformly (keeping its aspect ratio) by its resize rule, pads it with paper on the right
and bottom, and inverts it so ink is near 1 and paper near 0. Two rules:

- `height` (lines): scale to the network's height, up or down, and further down if the line
  would then be too wide; every line is read at one text height. Inference lifts the width
  limit (`any_width`) and reads a longer line in windows (`windows.py`), so that its writing
  keeps the height training saw.
- `shrink` (pages): keep the scale, shrinking only what would not fit; a paragraph's writing
  keeps its size, whatever margin of paper the page leaves.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image

from text_recognizer.data.transforms.ink import (
    content_heights,
    content_widths,
    ink_mask_inverted,
    paper_level,
)

Resize = Literal["height", "shrink"]
RESIZE_RULES: tuple[str, ...] = get_args(Resize)


class ImageStem:
    """Grayscale image (PIL or uint8 array) -> float tensor (1, height, width) in [0, 1]."""

    def __init__(self, height: int, width: int, resize: Resize = "height") -> None:
        if resize not in RESIZE_RULES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_RULES)}, got {resize!r}")
        self.height = height
        self.width = width
        self.resize = resize

    def scale(self, height: int, width: int, any_width: bool = False) -> float:
        """The factor this stem's rule scales an image of (height, width) by; `any_width` leaves
        out the line rule's width limit."""
        if any_width and self.resize == "height":
            return self.height / height
        scale = min(self.height / height, self.width / width)
        return min(scale, 1.0) if self.resize == "shrink" else scale

    def fit(self, image: Image.Image | np.ndarray, any_width: bool = False) -> np.ndarray:
        """Scale by the rule and pad to (height, width), still uint8 and dark-on-light; with
        `any_width`, a line scaled to the height and wider than `width` keeps its width."""
        if isinstance(image, np.ndarray):
            if image.shape == (self.height, self.width) and image.dtype == np.uint8:
                return image
            image = Image.fromarray(image.astype(np.uint8))
        image = image.convert("L")
        scale = self.scale(image.height, image.width, any_width)
        if scale != 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(image)
        width = max(self.width, pixels.shape[1])
        canvas = np.full((self.height, width), paper_level(pixels), dtype=np.uint8)
        canvas[: pixels.shape[0], : pixels.shape[1]] = pixels
        return canvas

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(self.fit(image)))
        return (1.0 - pixels.float() / 255.0).unsqueeze(0)


def crop_to_content(
    images: torch.Tensor, multiple: int = 32, columns: bool = True, rows: bool = False
) -> torch.Tensor:
    """Drop the paper columns that every image of a (b, 1, h, w) batch has on its right (with
    `columns`), and the paper rows they all have at the bottom (with `rows`).

    Lines are left-aligned and padded to a fixed width that most do not need, and pages are
    placed at the top left of a fixed page that most fill only in part: cropping the batch to
    its widest (and tallest) content, rounded up to `multiple`, saves the encoder that empty work.
    """
    ink = ink_mask_inverted(images)
    if columns:
        images = images[..., : _extent(ink.any(dim=(0, 1, 2)), multiple)]
    if rows:
        images = images[..., : _extent(ink.any(dim=(0, 1, 3)), multiple), :]
    return images


def _extent(has_ink: torch.Tensor, multiple: int) -> int:
    """The length that keeps every inked position of `has_ink` and a little paper after it,
    rounded up to `multiple` (at least `multiple`, at most the full length)."""
    inked = has_ink.nonzero()
    if inked.numel() == 0:
        return multiple
    return min(has_ink.numel(), -(-(int(inked.max()) + 1 + multiple // 4) // multiple) * multiple)


class EvalTransform:
    """What validation and test apply, so that inference applies exactly the same: the stem per
    image, then, for datamodules that crop their batches (`crop_width`, and `crop_height` for
    pages), `crop_to_content`."""

    def __init__(
        self, height: int, width: int, crop_width: bool, resize: Resize, crop_height: bool = False
    ) -> None:
        self.stem = ImageStem(height, width, resize)
        self.crop_width = crop_width
        self.crop_height = crop_height

    def params(self) -> dict[str, int | bool | str]:
        """Plain values that rebuild this transform (`EvalTransform(**params)`); `crop_height`
        only when set, so that line checkpoints read as they always have."""
        stem = self.stem
        params: dict[str, int | bool | str] = {
            "height": stem.height,
            "width": stem.width,
            "crop_width": self.crop_width,
            "resize": stem.resize,
        }
        if self.crop_height:
            params["crop_height"] = True
        return params

    def extents(self, images: np.ndarray) -> np.ndarray:
        """What (n, h, w) uint8 images are grouped into batches by: their content widths, or
        for pages their content heights, so a batch cropped to its widest (tallest) image holds
        little padding and a page reader reads a page in a batch as it reads it alone."""
        return content_heights(images) if self.crop_height else content_widths(images)

    def order(self, fitted: list[np.ndarray]) -> np.ndarray:
        """Indices of stem-fitted images by `extents` when cropping, as the validation sampler
        groups them."""
        if not self.crop_width or not fitted:
            return np.arange(len(fitted))
        return np.argsort(self.extents(np.stack(fitted)), kind="stable")

    def batch(self, fitted: list[np.ndarray]) -> torch.Tensor:
        """Stem-fitted uint8 images -> the (b, 1, height, w) float batch the network reads."""
        images = torch.stack([self.stem(image) for image in fitted])
        if not (self.crop_width or self.crop_height):
            return images
        return crop_to_content(images, columns=self.crop_width, rows=self.crop_height)
