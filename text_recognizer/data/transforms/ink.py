"""Where the ink is and what the paper is: one estimate and one threshold for every stage.

Images are dark ink on light paper (uint8). Most of a crop is paper, so a high percentile of its
grey levels is the paper's grey, whatever the scan's exposure, and a pixel is ink when it is
clearly darker than that. The stem pads with this paper, the sampler and the batch crop measure
lines by this ink, paragraphs are trimmed and whitened by it, and augmentation fills with it.
"""

from __future__ import annotations

import numpy as np
import torch

PAPER_PERCENTILE = 90
"""The paper's grey is this percentile of a crop's grey levels: above the ink and the shadows,
below a few specks of white."""
INK_CONTRAST = 76
"""A pixel at least this much darker than the paper (of 255, so 0.3 of the range) is ink."""
DRAWN_INK = 255 - INK_CONTRAST
"""The same rule on a canvas drawn on pure white (the synthetic renderer's), whose paper is 255:
no estimate needed, which matters for a cost paid several times per rendered line."""
PAPER_GRAIN = 40
"""Once paper is stretched to white, pixels within this of white are its grain, not ink."""


def paper_level(pixels: np.ndarray) -> int:
    """The paper's grey of one uint8 image (white for an empty one)."""
    return int(np.percentile(pixels, PAPER_PERCENTILE)) if pixels.size else 255


def paper_levels(images: np.ndarray) -> np.ndarray:
    """The paper's grey of each image of an (n, h, w) uint8 stack, shaped (n, 1, 1)."""
    flat = images.reshape(len(images), -1)
    return np.percentile(flat, PAPER_PERCENTILE, axis=1)[:, None, None]


def ink_mask(images: np.ndarray) -> np.ndarray:
    """Ink pixels of a uint8 image (h, w) or stack (n, h, w), each against its own paper."""
    stack = images[None] if images.ndim == 2 else images
    ink = stack.astype(np.int16) < paper_levels(stack) - INK_CONTRAST
    return ink[0] if images.ndim == 2 else ink


def ink_mask_inverted(images: torch.Tensor) -> torch.Tensor:
    """`ink_mask` of a (b, 1, h, w) float batch as the stem leaves it (ink near 1, paper near
    0): its paper is the matching low percentile."""
    flat = images.flatten(1).float()
    paper = torch.quantile(flat, 1 - PAPER_PERCENTILE / 100, dim=1).view(-1, 1, 1, 1)
    return (images - paper) > INK_CONTRAST / 255


def content_widths(images: np.ndarray) -> np.ndarray:
    """Rightmost ink column + 1 of each (n, h, w) uint8 image (0 for blank): how much of its
    padded width a line uses, which batches are grouped and cropped by."""
    return _content_extents(images, axis=1)


def content_heights(images: np.ndarray) -> np.ndarray:
    """Lowest ink row + 1 of each (n, h, w) uint8 image (0 for blank): how much of its page a
    paragraph uses, which page batches are grouped by, so that each is cropped close to its
    text, as a page read alone is."""
    return _content_extents(images, axis=2)


def _content_extents(images: np.ndarray, axis: int) -> np.ndarray:
    """The last inked position + 1 along the axis that `axis` (1: rows, 2: columns) leaves."""
    extents = np.zeros(len(images), dtype=np.int64)
    for start in range(0, len(images), 1024):
        ink = np.asarray(ink_mask(images[start : start + 1024]).any(axis=axis))
        last = ink.shape[1] - np.argmax(ink[:, ::-1], axis=1)
        extents[start : start + len(ink)] = np.where(ink.any(axis=1), last, 0)
    return extents
