"""Page images: where a document's image is, its size and resolution, and each line cut from it.

A line is cut as a crop of its box with a small pad of paper around it; a polygon masks what lies
outside it with the paper's grey (the same estimate the stem pads with), and a baseline
straightens it by shifting each column so the baseline becomes level, which also undoes a
curve. The crop then goes through the same stem as every other line.
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image, ImageDraw

from text_recognizer.data.documents.record import DocumentError, Line, Point
from text_recognizer.data.image_files import opened, read_image_file
from text_recognizer.data.transforms.ink import paper_level
from text_recognizer.errors import ImageError

PAD = 0.15
"""Paper kept on every side of a line's box, as a fraction of its height (at least 2 pixels)."""


def resolve_image(document: Path, name: str) -> Path:
    """The image a document names (a path or a file:// URL), beside the document. Transkribus
    exports keep their XML in page/ beside the images, so the folder above is tried too."""
    if name.startswith("file://"):
        name = unquote(urlparse(name).path)
    path = Path(name)
    if path.is_absolute():
        return path
    beside, above = document.parent / path, document.parent.parent / path
    return above if not beside.exists() and above.exists() else beside


def page_info(document: Path, image: Path) -> tuple[tuple[int, int], tuple[float, float] | None]:
    """The image's (width, height) and its resolution in dots per inch, if it records one."""
    try:
        with opened(image) as page:
            dpi = page.info.get("dpi")
            size = page.size
    except ImageError as error:
        raise DocumentError(document, f"its image {image}: {error.problem}") from None
    if not (isinstance(dpi, tuple) and len(dpi) == 2 and min(dpi) > 1):
        return size, None
    return size, (float(dpi[0]), float(dpi[1]))


def page_pixels(document: Path, image: Path) -> np.ndarray:
    """The page as a uint8 grayscale array (dark ink on light paper)."""
    try:
        return np.asarray(read_image_file(image), dtype=np.uint8)
    except ImageError as error:
        raise DocumentError(document, f"its image {image}: {error.problem}") from None


def line_image(page: np.ndarray, line: Line) -> np.ndarray:
    """The line's crop of a uint8 page: padded, masked by its polygon, levelled by its baseline."""
    x0, y0, x1, y1 = line.box
    pad = max(2, round(PAD * (y1 - y0)))
    left, top = max(0, math.floor(x0) - pad), max(0, math.floor(y0) - pad)
    right = min(page.shape[1], math.ceil(x1) + pad)
    bottom = min(page.shape[0], math.ceil(y1) + pad)
    crop = page[top:bottom, left:right].copy()
    mask = np.ones(crop.shape, dtype=bool)
    if line.polygon is not None:
        mask = _polygon_mask(crop.shape, [(x - left, y - top) for x, y in line.polygon])
    paper = paper_level(crop[mask]) if mask.any() else paper_level(crop)
    crop[~mask] = paper
    if line.baseline is not None and len({x for x, _ in line.baseline}) >= 2:
        shift = _baseline_shift(crop.shape[1], [(x - left, y - top) for x, y in line.baseline])
        crop, mask = _shift_columns(crop, shift, paper), _shift_columns(mask, shift, False)
        rows = np.flatnonzero(mask.any(axis=1))
        pad = max(2, round(PAD * (rows[-1] + 1 - rows[0])))  # of the line's height, now level
        crop = crop[max(0, rows[0] - pad) : rows[-1] + 1 + pad]
    return crop


def _polygon_mask(shape: tuple[int, ...], points: list[Point]) -> np.ndarray:
    canvas = Image.new("1", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


def _baseline_shift(width: int, baseline: list[Point]) -> np.ndarray:
    """Per column, how far the baseline lies below its mean: the polyline interpolated, and
    extended straight past its ends."""
    points = sorted(baseline)
    xs, ys = np.array([x for x, _ in points]), np.array([y for _, y in points])
    columns = np.arange(width) + 0.5
    heights = np.interp(columns, xs, ys)
    slope_left = (ys[1] - ys[0]) / max(xs[1] - xs[0], 1e-6)
    slope_right = (ys[-1] - ys[-2]) / max(xs[-1] - xs[-2], 1e-6)
    heights = np.where(columns < xs[0], ys[0] + (columns - xs[0]) * slope_left, heights)
    heights = np.where(columns > xs[-1], ys[-1] + (columns - xs[-1]) * slope_right, heights)
    return np.round(heights - heights.mean()).astype(np.int64)


def _shift_columns(pixels: np.ndarray, shift: np.ndarray, fill: int | bool) -> np.ndarray:
    """Each column moved up by its shift, on a canvas tall enough to lose nothing."""
    margin = int(np.abs(shift).max())
    height = pixels.shape[0] + 2 * margin
    canvas = np.full((height, pixels.shape[1]), fill, dtype=pixels.dtype)
    canvas[margin : margin + pixels.shape[0]] = pixels
    rows = np.clip(np.arange(height)[:, None] + shift[None, :], 0, height - 1)
    return canvas[rows, np.arange(pixels.shape[1])[None, :]]
