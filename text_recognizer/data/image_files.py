"""Image files as users hand them in (scans, line crops), each failure named in one line.

Pillow only warns between its pixel limit and twice that; a service must refuse both, before
decoding allocates the pixels.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from text_recognizer.errors import ImageError


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Image.Image]:
    """The image file, its header read (size, resolution) but its pixels not yet decoded."""
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a directory")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                yield image
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise ImageError(path, f"too large to decode safely ({error})") from error
        except UnidentifiedImageError as error:
            raise ImageError(path, "not an image (unrecognised format)") from error
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(path, f"truncated or corrupt image ({error})") from error


def read_image_file(path: Path) -> Image.Image:
    """The decoded image, grayscale."""
    with opened(path) as image:
        image.load()
        return image.convert("L")


def folder_images(folder: Path) -> list[Path]:
    """The image files (by extension) directly inside `folder`, sorted by name."""
    extensions = set(Image.registered_extensions())
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())
