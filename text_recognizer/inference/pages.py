"""Page images in; their lines found, read and written out: `<name>.txt` (lines in reading
order, a blank line between regions), `<name>.xml` (PAGE 2019, or ALTO v4: every line's outline,
baseline, text and confidence) and, if asked, `<name>.overlay.png`.

Lines are found by the segmenter (`text_recognizer.data.documents.segment`) and cut by the same
cutter as a PAGE file's lines. Pages are taken `PAGES_A_BATCH` at a time and all their lines read
together, so a folder of pages is read in batches across pages.

`segment="regions"` reads each region whole with a paragraph reader instead (segmentation-free
within a region). A paragraph reader that has lost its place repeats lines or writes lines that
are not there, so its reading is cut to the lines the segmenter found in the region, and a line
that repeats the one before it is dropped: it stops rather than invent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from text_recognizer.data.documents import Document, Line, Reading, alto, page_xml
from text_recognizer.data.documents.images import line_image
from text_recognizer.data.documents.overlay import overlay
from text_recognizer.data.documents.record import bounds, by_region, page_text, region_outline
from text_recognizer.data.documents.segment import FORMAT, found_lines, require_segmenter
from text_recognizer.data.image_files import read_image_file
from text_recognizer.errors import REPORTED, InferenceError
from text_recognizer.inference.documents import reading
from text_recognizer.inference.recognizer import Recognizer
from text_recognizer.io import atomic_path

FORMATS = {"page": page_xml.create, "alto": alto.create}
SEGMENTS = ("lines", "regions")
PAGES_A_BATCH = 4


@dataclass(frozen=True)
class PageImageReading:
    source: Path
    written: tuple[Path, ...]
    lines: int
    regions: int
    seconds: float
    """Finding its lines, cutting and reading them (its share of the batch)."""
    text: str


def reads_paragraphs(recognizer: Recognizer) -> bool:
    """A paragraph reader: its stem only shrinks (lines are scaled to the height)."""
    return recognizer.transform.stem.resize == "shrink"


def read_page_images(
    recognizer: Recognizer,
    paths: Sequence[Path],
    out: Path,
    format: str = "page",
    segment: str | None = None,
    draw: bool = False,
    batch_size: int | None = None,
) -> Iterator[tuple[Path, PageImageReading | BaseException]]:
    """Each page's reading as written into `out`, or the error that kept it from being read,
    in order. `segment` None: regions whole for a paragraph reader, else lines."""
    if format not in FORMATS:
        raise InferenceError("--format", f"{format!r} is not one of {', '.join(FORMATS)}")
    segment = segment or ("regions" if reads_paragraphs(recognizer) else "lines")
    if segment not in SEGMENTS:
        raise InferenceError("--segment", f"{segment!r} is not one of {', '.join(SEGMENTS)}")
    if segment == "regions" and not reads_paragraphs(recognizer):
        raise InferenceError(
            "--segment regions", "reads each region whole, which needs a paragraph checkpoint"
        )
    require_segmenter()
    for start in range(0, len(paths), PAGES_A_BATCH):
        found: dict[Path, tuple[Document, np.ndarray, list[np.ndarray], float]] = {}
        failed: dict[Path, BaseException] = {}
        for path in paths[start : start + PAGES_A_BATCH]:
            began = time.perf_counter()
            try:
                image = read_image_file(path)
                pixels = np.asarray(image, dtype=np.uint8)
                document = Document(path, path, FORMAT, found_lines(image), ())
            except REPORTED as error:
                failed[path] = error
                continue
            units = _units(document, segment)
            crops = [_crop(pixels, lines, segment) for lines in units]
            found[path] = (document, pixels, crops, time.perf_counter() - began)
        crops = [crop for _, _, page_crops, _ in found.values() for crop in page_crops]
        predictions = iter(recognizer.predict_timed(crops, batch_size, confidences=True))
        for path in paths[start : start + PAGES_A_BATCH]:
            if path in failed:
                yield path, failed[path]
                continue
            document, pixels, page_crops, seconds = found[path]
            read = [next(predictions) for _ in page_crops]
            seconds += sum(p.seconds for p in read)
            units = _units(document, segment)
            readings = (
                {line.id: reading(p) for (line,), p in zip(units, read, strict=True)}
                if segment == "lines"
                else region_readings(units, [reading(p) for p in read])
            )
            try:
                written = _write(document, readings, pixels, out, format, draw)
            except REPORTED as error:
                yield path, error
                continue
            regions = by_region(document.lines)
            text = page_text([[readings[line.id].text for line in lines] for lines in regions])
            yield (
                path,
                PageImageReading(path, written, len(document.lines), len(regions), seconds, text),
            )


def _units(document: Document, segment: str) -> list[list[Line]]:
    """What is read as one image: each line, or each region's lines."""
    if segment == "lines":
        return [[line] for line in document.lines]
    return by_region(document.lines)


def _crop(pixels: np.ndarray, lines: list[Line], segment: str) -> np.ndarray:
    return line_image(pixels, lines[0]) if segment == "lines" else region_image(pixels, lines)


def region_image(pixels: np.ndarray, lines: Sequence[Line]) -> np.ndarray:
    """A region's crop for the paragraph reader: the box around its lines."""
    x0, y0, x1, y1 = bounds(region_outline(lines))
    return pixels[round(y0) : round(y1), round(x0) : round(x1)]


def region_readings(units: list[list[Line]], read: list[Reading]) -> dict[str, Reading]:
    """Each region's reading given to its found lines in order, cut to as many lines as were
    found, a line that repeats the one before it dropped."""
    readings = {}
    for lines, whole in zip(units, read, strict=True):
        kept: list[str] = []
        for text in whole.text.split("\n"):
            if len(kept) < len(lines) and (not kept or text != kept[-1]):
                kept.append(text)
        kept += [""] * (len(lines) - len(kept))
        for line, text in zip(lines, kept, strict=True):
            readings[line.id] = Reading(text, whole.confidence, ())
    return readings


def _write(
    document: Document,
    readings: dict[str, Reading],
    pixels: np.ndarray,
    out: Path,
    format: str,
    draw: bool,
) -> tuple[Path, ...]:
    out.mkdir(parents=True, exist_ok=True)
    stem = document.path.stem
    size = (pixels.shape[1], pixels.shape[0])
    image = os.path.relpath(document.image.resolve(), out.resolve())
    regions = by_region(document.lines)
    files = {
        out / f"{stem}.txt": (
            page_text([[readings[line.id].text for line in lines] for lines in regions]) + "\n"
        ).encode(),
        out / f"{stem}.xml": FORMATS[format](document, readings, image, size),
    }
    for target, data in files.items():
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    if draw:
        target = out / f"{stem}.overlay.png"
        texts = {line_id: r.text for line_id, r in readings.items()}
        with atomic_path(target) as tmp:
            overlay(pixels, document.lines, texts).save(tmp, format="PNG")
        files[target] = b""
    return tuple(files)
