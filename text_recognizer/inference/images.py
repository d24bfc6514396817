"""Reading user images: paths, PIL images or arrays, each failure named in one line.

Input convention: grayscale (colour is converted), dark ink on light paper, any size; the
recognizer's transform resizes and pads it the way the model's datamodule does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from text_recognizer.data.image_files import read_image_file
from text_recognizer.errors import ImageError

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray


def read_image(source: ImageInput) -> Image.Image | np.ndarray:
    """A decoded grayscale PIL image, or a validated uint8 array (h, w) or (h, w, 3)."""
    if isinstance(source, Image.Image):
        return source.convert("L")
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or not (
            source.ndim == 2 or (source.ndim == 3 and source.shape[2] in (1, 3))
        ):
            raise ImageError(
                f"array {source.dtype} {source.shape}",
                "expected uint8 (h, w) grayscale or (h, w, 3) RGB",
            )
        if min(source.shape[:2]) == 0:
            raise ImageError(f"array {source.shape}", "empty image")
        return source[..., 0] if source.ndim == 3 and source.shape[2] == 1 else source
    return read_image_file(Path(source))
