"""Reading user images: paths, PIL images or arrays, each failure named in one line.

Input convention: grayscale (colour is converted), dark ink on light paper, any size; the
recognizer's transform resizes and pads it the way the model's datamodule does.
"""

from __future__ import annotations

import os
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from text_recognizer.inference.errors import ImageError, ImageTooLargeError, NotAnImageError

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
    return _read_file(Path(source))


def _read_file(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a directory")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file")
    return decode_image(path, path)


def decode_image(
    data: bytes | Path,
    source: object,
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
) -> Image.Image:
    """Decode a file or its bytes to grayscale, its format found by decoding it.

    `max_pixels` (besides Pillow's own limit) and `formats` (Pillow's names; None: all) are
    for a service, whose uploads are untrusted: sizes are checked from the header, before
    decoding allocates the pixels.
    """
    if isinstance(data, bytes) and not data:
        raise ImageError(source, "empty file")
    # Pillow only warns between its pixel limit and twice that; a service must refuse both.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(
                BytesIO(data) if isinstance(data, bytes) else data, formats=formats
            ) as image:
                pixels = image.width * image.height
                if max_pixels is not None and pixels > max_pixels:
                    raise ImageTooLargeError(
                        source,
                        f"{image.width} x {image.height} pixels; at most {max_pixels:,} are read",
                    )
                image.load()
                return image.convert("L")
        except ImageError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise ImageTooLargeError(source, f"too large to decode safely ({error})") from error
        except UnidentifiedImageError as error:
            raise NotAnImageError(source, "not an image (unrecognised format)") from error
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(source, f"truncated or corrupt image ({error})") from error


def folder_images(folder: Path) -> list[Path]:
    """The image files (by extension) directly inside `folder`, sorted by name."""
    extensions = set(Image.registered_extensions())
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())
