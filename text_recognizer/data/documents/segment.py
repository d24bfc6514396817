"""Page images: their lines found by kraken's baseline segmenter (`blla`, the `pages` extra),
as the same record a PAGE or ALTO file gives, so they go through the same line cutter.

The segmenter draws a baseline and a tight outline per line, groups lines into text regions and
orders them. Two things are changed before cutting:
- it splits a line at a wide gap between words: pieces of one line (same region, one after the
  other along the same baseline height) are joined back into one line;
- its outlines follow the ink tightly and can cut an ascender or descender: each line is cut
  as a band along its baseline, as high and as deep as its outline reaches (measured from the
  baseline, not the page's rows, so a sloping line is not taller), and at least `ROOM_ABOVE`
  and `ROOM_BELOW` times the page's typical height of writing above a baseline.
"""

from __future__ import annotations

import importlib.util
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from text_recognizer.data.documents.record import Line, Point, make_line
from text_recognizer.errors import DataError

ROOM_ABOVE = 0.8
ROOM_BELOW = 0.5
"""Floors, measured on 8 composed pages of the held-out families (`benchmarks.pages` with seed 1,
not the benchmark's own pages; 96 lines, which cut at their true boxes read at CER 0.230): with
these floors the found lines read at 0.221; with 1.0 and 0.7 at 0.261, the taller bands taking
in the neighbouring lines' ink; with none at 0.247, some bands then too thin to hold the line."""
REACH = 90
"""The percentile of the outline's points' distances from the baseline taken as its reach: the
farthest point (100) read at CER 0.235 on the same pages, an outline that strays into the next
line widening the whole band."""
JOIN_GAP = 0.5
"""Pieces join when the next starts at most this many writing heights above or below where the
last ended (and not left of it by more)..."""
JOIN_WIDTH = 4.0
"""...and at most this many right of it: a wide gap between words, not a column's gutter."""
FORMAT = "page image (kraken blla)"
"""What a found page's `Document.format` says."""
INSTALL = "pip install 'text-recognizer[pages]'"


class SegmenterMissingError(DataError):
    """kraken is not installed."""


@dataclass
class _Piece:
    baseline: list[Point]
    above: float
    """How far the segmenter's outline reaches above the baseline, and below it."""
    below: float
    region: str | None


def found_lines(image: Image.Image) -> tuple[Line, ...]:
    """The lines of a page image (grayscale), in reading order, each with its region."""
    segmentation = _segment(image)
    pieces = [_piece(line) for line in segmentation.lines if line.baseline and line.boundary]
    if not pieces:
        return ()
    height = statistics.median(p.above for p in pieces)
    lines = []
    for order, piece in enumerate(_joined(pieces, height)):
        above = max(piece.above, ROOM_ABOVE * height)
        band = _band(piece, above, max(piece.below, ROOM_BELOW * height))
        line = make_line(
            f"l{order}", None, band, piece.baseline, None, order, image.size, piece.region
        )
        if isinstance(line, Line):
            lines.append(line)
    return tuple(lines)


def require_segmenter() -> None:
    """Fail in one line, saying how to install it, where kraken is not installed."""
    if importlib.util.find_spec("kraken") is None:
        raise SegmenterMissingError(
            f"reading a page image needs kraken's line segmenter: {INSTALL}"
        )


def _segment(image: Image.Image) -> Any:
    from kraken.configs import SegmentationInferenceConfig

    return _model().predict(image, SegmentationInferenceConfig())


@lru_cache(maxsize=1)
def _model() -> Any:
    """kraken's default segmentation model, which ships inside its wheel (no download)."""
    require_segmenter()
    from kraken.tasks import SegmentationTaskModel

    return SegmentationTaskModel.load_model()


def _piece(line: Any) -> _Piece:
    """How far the outline reaches above and below the baseline, measured at each of its points
    from the baseline there (so a sloping line's slope does not count as height)."""
    baseline = sorted((float(x), float(y)) for x, y in line.baseline)
    xs, ys = np.array(line.boundary, dtype=np.float64).T
    offsets = ys - np.interp(xs, [x for x, _ in baseline], [y for _, y in baseline])
    above = float(np.percentile(-offsets, REACH)) if (offsets < 0).any() else 1.0
    below = float(np.percentile(offsets, REACH)) if (offsets > 0).any() else 1.0
    region = line.regions[0] if line.regions else None
    return _Piece(baseline, max(above, 1.0), max(below, 1.0), region)


def _joined(pieces: list[_Piece], height: float) -> list[_Piece]:
    """Pieces of one line joined, in the order of each line's first piece."""
    lines: list[_Piece] = []
    for piece in pieces:
        (x, y) = piece.baseline[0]
        before = [
            line
            for line in lines
            if line.region == piece.region
            and line.baseline[-1][0] - JOIN_GAP * height <= x
            and x <= line.baseline[-1][0] + JOIN_WIDTH * height
            and abs(line.baseline[-1][1] - y) <= JOIN_GAP * height
        ]
        if not before:
            lines.append(piece)
            continue
        line = min(before, key=lambda line: x - line.baseline[-1][0])
        line.baseline += piece.baseline
        line.above, line.below = max(line.above, piece.above), max(line.below, piece.below)
    return lines


def _band(piece: _Piece, above: float, below: float) -> list[Point]:
    """The outline `above` over and `below` under the baseline, along it."""
    top = [(x, y - above) for x, y in piece.baseline]
    bottom = [(x, y + below) for x, y in reversed(piece.baseline)]
    return top + bottom
