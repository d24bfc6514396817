"""Image files as users hand them in (scans, line crops, uploads), each failure named in one line.

Pillow only warns between its pixel limit and twice that; a service must refuse both, before
decoding allocates the pixels.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from text_recognizer.errors import ImageError, ImageTooLargeError, NotAnImageError


@contextlib.contextmanager
def opened(
    file: Path | bytes,
    source: object = "image",
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
) -> Iterator[Image.Image]:
    """The image in a file, or in its bytes (named `source` in errors), its header read (size,
    resolution) but its pixels not yet decoded. Its format is found by decoding, never from a
    name. `max_pixels` (besides Pillow's own limit) and `formats` (Pillow's names; None: all)
    are for a service, whose uploads are untrusted."""
    if isinstance(file, Path):
        source = file
        if not file.exists():
            raise ImageError(file, "no such file")
        if file.is_dir():
            raise ImageError(file, "is a directory")
    if (file.stat().st_size if isinstance(file, Path) else len(file)) == 0:
        raise ImageError(source, "empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            stream = BytesIO(file) if isinstance(file, bytes) else file
            with Image.open(stream, formats=formats) as image:
                if max_pixels is not None and image.width * image.height > max_pixels:
                    raise ImageTooLargeError(
                        source,
                        f"{image.width} x {image.height} pixels; at most {max_pixels:,} are read",
                    )
                yield image
        except ImageError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise ImageTooLargeError(source, f"too large to decode safely ({error})") from error
        except UnidentifiedImageError as error:
            raise NotAnImageError(source, "not an image (unrecognised format)") from error
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(source, f"truncated or corrupt image ({error})") from error


def read_image_file(
    file: Path | bytes,
    source: object = "image",
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
) -> Image.Image:
    """The decoded image, grayscale (see `opened` for the arguments)."""
    with opened(file, source, max_pixels, formats) as image:
        image.load()
        return image.convert("L")


def folder_images(folder: Path) -> list[Path]:
    """The image files (by extension) directly inside `folder`, sorted by name."""
    extensions = set(Image.registered_extensions())
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())
