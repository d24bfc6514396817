"""Whole pages composed from line crops, with every line's true position: what line finding and
page reading are measured on.

A page holds paragraphs (regions) arranged as `LinePool.arrange` arranges the paragraph reader's
pages, stacked in one column or spread over two, each in its own hand, on the paper of the
first line's source. The page may be turned a little, its lines' outlines with it. Reading order
is region by region (a column top to bottom, then the next), lines top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from text_recognizer.data.documents.record import Point, bounds, corners, page_text
from text_recognizer.data.pages.assembly import Layout, LinePool, Placed

GAPS = tuple(range(4, 16))
"""Pixels between one line's ink and the next's in a composed region (no touching lines)."""
MARGIN = 60
"""Paper around the writing, and between regions of a column."""
GUTTER = 160
"""Paper between columns: wider than a gap between words, as on a written page."""


@dataclass(frozen=True)
class TrueLine:
    text: str
    polygon: tuple[Point, ...]
    """The corners of the line's ink box, turned with the page."""
    region: int


@dataclass(frozen=True)
class ComposedPage:
    pixels: np.ndarray
    """uint8 (height, width), dark ink on light paper."""
    lines: tuple[TrueLine, ...]
    """In reading order."""

    @property
    def text(self) -> str:
        """Lines in reading order; a blank line between regions."""
        regions = [[line.text for line in self.lines if line.region == r] for r in self.regions]
        return page_text(regions)

    @property
    def regions(self) -> list[int]:
        return list(dict.fromkeys(line.region for line in self.lines))


def compose_page(
    pool: LinePool,
    rng: np.random.Generator,
    regions: int,
    columns: int = 1,
    size: tuple[int, int] = (1400, 1800),
    lines_per_region: tuple[int, ...] = (3, 4, 5, 6),
    angle: float = 0.0,
) -> ComposedPage:
    """`regions` paragraphs in `columns` columns of a (width, height) page, turned by `angle`
    degrees (counter-clockwise)."""
    width, height = size
    column_width = (width - 2 * MARGIN - GUTTER * (columns - 1)) // columns
    per_column = [regions // columns + (c < regions % columns) for c in range(columns)]
    layout = Layout(lines_per_region, GAPS, (0, 0, 10, 20))
    page = np.full((height, width), 255, dtype=np.uint8)
    truth: list[TrueLine] = []
    papers: list[int] = []
    region = 0
    for column, count in enumerate(per_column):
        left, top = MARGIN + column * (column_width + GUTTER), MARGIN
        room = (height - MARGIN * (count + 1)) // max(count, 1)
        for _ in range(count):
            placed, start = pool.arrange(rng, layout, room, column_width, 10_000)
            papers.append(pool.papers[start])
            bottom = top
            for line in placed:
                y, x = top + line.top, left + line.left
                ink = page[y : y + line.crop.shape[0], x : x + line.crop.shape[1]]
                np.minimum(ink, line.crop, out=ink)
                truth.append(TrueLine(line.text, _corners(line, left, top), region))
                bottom = max(bottom, top + line.top + line.crop.shape[0])
            top = bottom + MARGIN
            region += 1
    if not truth:
        return ComposedPage(page, ())
    # One paper for the page (the first hand's), as a scan has one paper colour.
    page = (page.astype(np.float32) * (papers[0] / 255.0)).round().astype(np.uint8)
    if angle:
        page, truth = _turned(page, truth, angle, papers[0])
    return ComposedPage(page, tuple(truth))


def blank_page(size: tuple[int, int] = (1400, 1800), paper: int = 235) -> ComposedPage:
    return ComposedPage(np.full((size[1], size[0]), paper, dtype=np.uint8), ())


def _corners(line: Placed, left: int, top: int) -> tuple[Point, ...]:
    x0, y0 = left + line.left, top + line.top
    return corners((x0, y0, x0 + line.crop.shape[1], y0 + line.crop.shape[0]))


def _turned(
    page: np.ndarray, truth: list[TrueLine], angle: float, paper: int
) -> tuple[np.ndarray, list[TrueLine]]:
    """The page turned about its centre (paper fills the corners), and the outlines with it."""
    image = Image.fromarray(page).rotate(
        angle, resample=Image.Resampling.BICUBIC, fillcolor=int(paper)
    )
    cx, cy = page.shape[1] / 2, page.shape[0] / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def turn(point: Point) -> Point:  # counter-clockwise on screen: y grows downwards
        dx, dy = point[0] - cx, point[1] - cy
        return (cx + dx * cos + dy * sin, cy - dx * sin + dy * cos)

    turned = [TrueLine(t.text, tuple(map(turn, t.polygon)), t.region) for t in truth]
    return np.asarray(image), turned


def polygon_iou(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Intersection over union of two polygons, rasterised at whole pixels over their joint box."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = bounds(a), bounds(b)
    if ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0:
        return 0.0
    x0, y0, x1, y1 = bounds([*a, *b])
    left, top = math.floor(x0), math.floor(y0)
    size = (math.ceil(x1) - left + 1, math.ceil(y1) - top + 1)

    def mask(points: Sequence[Point]) -> np.ndarray:
        canvas = Image.new("1", size, 0)
        ImageDraw.Draw(canvas).polygon([(x - left, y - top) for x, y in points], fill=1)
        return np.asarray(canvas, dtype=bool)

    first, second = mask(a), mask(b)
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 0.0


def match_lines(
    found: Sequence[Sequence[Point]], truth: Sequence[Sequence[Point]], threshold: float = 0.5
) -> list[tuple[int, int]]:
    """(found index, true index) pairs, each line in at most one, best overlaps first, of those
    that overlap at `threshold` or more."""
    pairs = [
        (iou, i, j)
        for i, a in enumerate(found)
        for j, b in enumerate(truth)
        if (iou := polygon_iou(a, b)) >= threshold
    ]
    matched: list[tuple[int, int]] = []
    used_found, used_true = set(), set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_found and j not in used_true:
            matched.append((i, j))
            used_found.add(i)
            used_true.add(j)
    return sorted(matched)
