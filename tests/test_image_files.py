"""One image reader for files (predict, documents) and uploaded bytes (serve): the same pixels
and the same error types from either, so each caller maps a failure the same way."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_predict import png_header

from text_recognizer.data.image_files import opened, read_image_file
from text_recognizer.errors import ImageError, ImageTooLargeError, NotAnImageError


def png(width: int = 40, height: int = 10) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    out = BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def as_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("from_file", [False, True], ids=["bytes", "file"])
def test_a_file_and_its_bytes_read_as_the_same_grayscale_image(
    tmp_path: Path, from_file: bool
) -> None:
    data = png()
    image = read_image_file(as_file(tmp_path, data) if from_file else data)
    expected = Image.open(BytesIO(data)).convert("L")
    assert image.mode == "L" and image.size == (40, 10)
    assert np.array_equal(np.asarray(image), np.asarray(expected))


@pytest.mark.parametrize("from_file", [False, True], ids=["bytes", "file"])
@pytest.mark.parametrize(
    ("data", "options", "error", "problem"),
    [
        (b"plain text", {}, NotAnImageError, "not an image"),
        (png(), {"formats": ("JPEG",)}, NotAnImageError, "not an image"),
        (png(40, 10), {"max_pixels": 399}, ImageTooLargeError, "40 x 10 pixels; at most 399"),
        (png()[:60], {}, ImageError, "truncated or corrupt image"),
        (b"", {}, ImageError, "empty file"),
    ],
    ids=["text", "format-not-allowed", "too-many-pixels", "truncated", "empty"],
)
def test_bad_input_is_the_same_error_from_a_file_or_its_bytes(
    tmp_path: Path,
    from_file: bool,
    data: bytes,
    options: dict[str, object],
    error: type[ImageError],
    problem: str,
) -> None:
    source = as_file(tmp_path, data) if from_file else data
    with pytest.raises(error) as raised:
        read_image_file(source, "upload", **options)
    assert type(raised.value) is error
    assert raised.value.problem.startswith(problem)
    assert raised.value.source == (source if from_file else "upload")


def test_the_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    """The PNG declares its size but holds no pixels, so decoding it would fail."""
    data = png_header(tmp_path / "header.png", 1000, 1000).read_bytes()
    with pytest.raises(ImageTooLargeError, match="1000 x 1000 pixels"):
        read_image_file(data, max_pixels=999_999)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_image_file(data, max_pixels=1_000_000)
    with opened(data, max_pixels=1_000_000) as image:
        assert image.size == (1000, 1000)
