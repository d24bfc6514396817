"""Training-only augmentation of real crops: a small random affine before the shared stem.

Real data is scarce (IAM has about 6,000 training lines), so the network sees each crop a little
slanted, rotated, narrowed and shifted. It is modest on purpose, and only shrinks (about the middle
of the left edge), so text stays inside the page. Validation, test and inference use the plain stem.
Randomness comes from torch, so Lightning seeds it per dataloader worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from text_recognizer.data.transforms import ImageStem, Resize
from text_recognizer.data.transforms.ink import paper_level


@dataclass(frozen=True)
class Affine:
    """The largest change each kind of variation may make."""

    rotation_deg: float = 0.5
    shear: float = 0.15
    min_width_scale: float = 0.85
    min_height_scale: float = 0.85
    translate_px: float = 2.0


LINE_AFFINE = Affine()
PARAGRAPH_AFFINE = Affine(shear=0.05, min_width_scale=0.9, min_height_scale=0.9)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


class AugmentedStem(ImageStem):
    """The stem, after a random affine of the fitted image (paper fills what is uncovered)."""

    def __init__(
        self, height: int, width: int, affine: Affine = LINE_AFFINE, resize: Resize = "height"
    ) -> None:
        super().__init__(height, width, resize)
        self.affine = affine

    def augment(self, pixels: np.ndarray) -> np.ndarray:
        a = self.affine
        angle = np.deg2rad(_uniform(-a.rotation_deg, a.rotation_deg))
        shear = _uniform(-a.shear, a.shear)
        sx, sy = _uniform(a.min_width_scale, 1.0), _uniform(a.min_height_scale, 1.0)
        tx, ty = _uniform(0, a.translate_px), _uniform(-a.translate_px, a.translate_px)
        cos, sin = np.cos(angle), np.sin(angle)
        # Forward map rotate(shear(scale(p - pivot))) + pivot + t, pivot at the middle of the left
        # edge (text is left-aligned); PIL wants the inverse, output pixel -> input pixel.
        forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]])
        forward = forward @ np.diag([sx, sy])
        inverse = np.linalg.inv(forward)
        pivot = np.array([0.0, pixels.shape[0] / 2])
        offset = pivot - inverse @ (pivot + np.array([tx, ty]))
        coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
        image = Image.fromarray(pixels).transform(
            (pixels.shape[1], pixels.shape[0]),
            Image.Transform.AFFINE,
            coefficients,
            resample=Image.Resampling.BILINEAR,
            fillcolor=paper_level(pixels),
        )
        return np.array(image)  # a writable copy: torch refuses to wrap read-only memory

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        return super().__call__(self.augment(self.fit(image)))
