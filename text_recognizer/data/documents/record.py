"""The one record every reader returns: a page image and its lines, in reading order.

Coordinates are pixels of the page image, already converted from the document's unit and
clipped to the image. A line that cannot be cut from the image (no coordinates, a degenerate
shape, or one outside the image) is not a record: it is listed in `skipped` with the reason, so
every reader counts what it leaves out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from text_recognizer.errors import DataError

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1
NUMBER_SEPARATORS = re.compile(r"[\s,]+")
MIN_SIZE = 2.0  # a line thinner or shorter than this many pixels holds no readable writing


class DocumentError(DataError):
    """`<file>: [line <id>: ]<problem>`: a document (or one of its lines) that cannot be used."""

    def __init__(self, path: Path, problem: str, line_id: str | None = None) -> None:
        where = f"{path}: line {line_id}" if line_id is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line_id = line_id
        self.problem = problem


@dataclass(frozen=True)
class Line:
    id: str
    box: Box
    """The region to cut: the polygon's bounding box, or the box the document gives."""
    polygon: tuple[Point, ...] | None
    """The outline; pixels outside it are not part of the line."""
    baseline: tuple[Point, ...] | None
    text: str | None
    """The transcription; None when the document holds none (a page to be read)."""
    order: int
    """Position in the page's reading order."""
    region: str | None = None
    """The text region the line belongs to, where the document says (a found page's do)."""

    @property
    def outline(self) -> tuple[Point, ...]:
        """The polygon, or the box's corners."""
        return self.polygon or corners(self.box)


@dataclass(frozen=True)
class Reading:
    """What a recognizer read in a line, to be written back: the text, and the confidence (in
    [0, 1]) of the whole line and of each of its `words`."""

    text: str
    confidence: float
    word_confidences: tuple[float, ...]


def words(text: str) -> list[str]:
    """The words of a line, as readings give their confidences and ALTO its `String`s."""
    return [word for word in text.split() if word]


def by_region(lines: Sequence[Line]) -> list[list[Line]]:
    """Lines in reading order, grouped into their regions: a new group wherever the region
    changes (lines of no region between two of the same one are a region of their own)."""
    groups: list[list[Line]] = []
    for i, line in enumerate(lines):
        if not i or line.region != lines[i - 1].region:
            groups.append([])
        groups[-1].append(line)
    return groups


def page_text(regions: Sequence[Sequence[str]]) -> str:
    """A page's text: a line each, a blank line between regions."""
    return "\n\n".join("\n".join(lines) for lines in regions)


@dataclass(frozen=True)
class Skipped:
    line_id: str
    reason: str


@dataclass(frozen=True)
class Document:
    path: Path
    """The XML file, or the line image of a line folder."""
    image: Path
    format: str
    """`PAGE 2019-07-15`, `ALTO v4`, `line folder`, ..."""
    lines: tuple[Line, ...]
    skipped: tuple[Skipped, ...]


def parse_numbers(text: str, path: Path, line_id: str, what: str) -> list[float]:
    """The numbers of an attribute (`x,y x,y`, `x y x y` or one number); anything else, a NaN
    or an infinity included, is a `DocumentError` naming the line."""
    parts = [p for p in NUMBER_SEPARATORS.split(text.strip()) if p]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if not numbers or not all(math.isfinite(n) for n in numbers):
        raise DocumentError(path, f"{what} {text!r} are not numbers", line_id)
    return numbers


def parse_points(text: str, path: Path, line_id: str, what: str) -> list[Point]:
    numbers = parse_numbers(text, path, line_id, what)
    if len(numbers) % 2:
        raise DocumentError(path, f"{what} {text!r} are not x,y pairs", line_id)
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def bounds(points: Sequence[Point]) -> Box:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def format_points(points: Sequence[Point]) -> str:
    """`x,y x,y ...` in whole pixels, as PAGE's pointsType (and ALTO's) write them."""
    return " ".join(f"{round(x)},{round(y)}" for x, y in points)


def corners(box: Box) -> tuple[Point, ...]:
    x0, y0, x1, y1 = box
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def region_outline(lines: Sequence[Line]) -> tuple[Point, ...]:
    """The corners of the box around these lines."""
    x0, y0, x1, y1 = zip(*(line.box for line in lines), strict=True)
    return corners((min(x0), min(y0), max(x1), max(y1)))


def clip_point(point: Point, size: tuple[int, int]) -> Point:
    return min(max(point[0], 0.0), float(size[0])), min(max(point[1], 0.0), float(size[1]))


def shape_problem(box: Box, polygon: Sequence[Point] | None, size: tuple[int, int]) -> str | None:
    """Why a line of this (unclipped) box and polygon cannot be cut from an image of `size`, or
    None if it can."""
    x0, y0, x1, y1 = box
    if x1 <= 0 or y1 <= 0 or x0 >= size[0] or y0 >= size[1]:
        return "outside the image"
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, size[0]), min(y1, size[1])
    if cx1 - cx0 < MIN_SIZE or cy1 - cy0 < MIN_SIZE:
        return "degenerate (thinner than 2 pixels)"
    if polygon is not None:
        clipped = [clip_point(p, size) for p in polygon]
        if len(set(clipped)) < 3 or _area(clipped) < MIN_SIZE * MIN_SIZE:
            return "degenerate (a polygon of no area)"
    return None


def _area(points: Sequence[Point]) -> float:
    """Shoelace area of a closed polygon."""
    pairs = zip(points, [*points[1:], points[0]], strict=True)
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairs)) / 2


def make_line(
    line_id: str,
    box: Box | None,
    polygon: Sequence[Point] | None,
    baseline: Sequence[Point] | None,
    text: str | None,
    order: int,
    size: tuple[int, int],
    region: str | None = None,
) -> Line | Skipped:
    """A record with its coordinates clipped to the image, or why there is none."""
    if polygon is not None:
        box = bounds(polygon)
    if box is None:
        return Skipped(line_id, "no coordinates")
    if problem := shape_problem(box, polygon, size):
        return Skipped(line_id, problem)
    corners = clip_point(box[:2], size), clip_point(box[2:], size)
    return Line(
        id=line_id,
        box=(*corners[0], *corners[1]),
        polygon=None if polygon is None else tuple(clip_point(p, size) for p in polygon),
        baseline=None if not baseline else tuple(clip_point(p, size) for p in baseline),
        text=text,
        order=order,
        region=region,
    )
