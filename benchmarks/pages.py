"""Whole pages: how well lines are found, and what reading a page costs against reading its
lines cut by hand.

Pages are composed (`text_recognizer.data.pages.compose`) from the held-out families' test
lines (never trained on): 2 or 3 regions, in one column or two, some turned by up to 2 degrees.
Each true line is where it was drawn, so the benchmark reports, on 2 cores:

- line detection: precision and recall, a line found when one found line overlaps it at
  intersection over union >= 0.5; and the share of pages read in the right order;
- page CER of lines-then-read (found by the segmenter, cut, read) beside the same lines cut
  from their true positions (the same cutter, the true box) and read by the same model;
- seconds a page: finding lines, cutting and reading; beside `kraken segment -bl` on the same
  pages (its own command line, model loading included, as a user runs it);
- with `--paragraphs CKPT`, the same found regions read whole by a paragraph reader: page CER
  as it read them and cut to the lines found (what `predict --segment regions` writes), and how
  often it read a region with as many lines as the region holds.

    python -m benchmarks.pages --checkpoint runs/<run>/checkpoints/best.ckpt [--pages 50]

Results go to `benchmarks/results/pages.json`; `--scans DIR` also writes three pages of the
scan-like held-out set into DIR and reads them as `predict --out DIR --overlay` does.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torchmetrics.functional.text import char_error_rate

from benchmarks.common import add_arguments, checkpoint_name, machine, print_table, write
from benchmarks.heldout import datamodule
from text_recognizer.data.documents import Line, Reading
from text_recognizer.data.documents.images import line_image
from text_recognizer.data.documents.record import bounds, by_region
from text_recognizer.data.documents.segment import found_lines
from text_recognizer.data.pages.compose import ComposedPage, compose_page, match_lines
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.pages import (
    PageImageReading,
    read_page_images,
    region_image,
    region_readings,
)
from text_recognizer.inference.recognizer import Recognizer

KRAKEN_PAGES = 5
"""Pages `kraken segment -bl` is timed on (each call loads its model, as a user's does)."""


def pages(
    count: int, seed: int = 0, name: str = "plain", smoke: bool = False
) -> list[ComposedPage]:
    """`count` pages of the held-out set `name`'s test lines (`benchmarks.heldout`)."""
    lines = datamodule(name, smoke)
    lines.prepare_data()
    pool, _ = SyntheticParagraphs._pool(lines.path, "test")
    composed = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        regions, columns = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        angle = float(rng.uniform(-2, 2)) if rng.random() < 0.3 else 0.0
        composed.append(compose_page(pool, rng, regions, columns, angle=angle))
    return composed


def true_lines(page: ComposedPage) -> list[Line]:
    """The page's lines at their true positions, as records the cutter takes."""
    return [
        Line(f"t{i}", bounds(line.polygon), line.polygon, None, line.text, i, str(line.region))
        for i, line in enumerate(page.lines)
    ]


def read_lines(recognizer: Recognizer, pixels: np.ndarray, lines: list[Line]) -> list[str]:
    return recognizer.predict_batch([line_image(pixels, line) for line in lines])


@dataclass
class Found:
    """A composed page with the lines the segmenter found on it, and the seconds that took."""

    page: ComposedPage
    lines: list[Line]
    seconds: float


def find(composed: list[ComposedPage]) -> list[Found]:
    found = []
    for page in composed:
        began = time.perf_counter()
        lines = list(found_lines(Image.fromarray(page.pixels)))
        found.append(Found(page, lines, time.perf_counter() - began))
    return found


def truth(page: ComposedPage) -> str:
    return "\n".join(line.text for line in page.lines)


def measure(recognizer: Recognizer, found: list[Found]) -> dict[str, Any]:
    """Detection, and page CER of found lines against true ones, both read by `recognizer`."""
    found_total = true_total = matched_total = ordered = 0
    read_texts, cut_texts = [], []
    read_seconds = 0.0
    for item in found:
        page = item.page
        began = time.perf_counter()
        read_texts.append("\n".join(read_lines(recognizer, page.pixels, item.lines)))
        read_seconds += time.perf_counter() - began
        matched = match_lines([f.outline for f in item.lines], [t.polygon for t in page.lines])
        found_total, true_total = found_total + len(item.lines), true_total + len(page.lines)
        matched_total += len(matched)
        ordered += [j for _, j in matched] == sorted(j for _, j in matched)
        cut_texts.append("\n".join(read_lines(recognizer, page.pixels, true_lines(page))))
    n = len(found)
    truths = [truth(item.page) for item in found]
    segment_seconds = sum(item.seconds for item in found)
    return {
        "pages": n,
        "true_lines": true_total,
        "found_lines": found_total,
        "precision": round(matched_total / max(found_total, 1), 4),
        "recall": round(matched_total / max(true_total, 1), 4),
        "pages_in_order": round(ordered / n, 4),
        "cer_lines_then_read": round(float(char_error_rate(read_texts, truths)), 4),
        "cer_true_lines": round(float(char_error_rate(cut_texts, truths)), 4),
        "seconds_a_page": round((segment_seconds + read_seconds) / n, 2),
        "segment_seconds_a_page": round(segment_seconds / n, 2),
        "read_seconds_a_page": round(read_seconds / n, 2),
    }


def measure_paragraphs(recognizer: Recognizer, found: list[Found]) -> dict[str, Any]:
    """Each found region read whole by a paragraph reader: page CER as it read, and cut to the
    lines found (`--segment regions`); how many regions it read with as many lines as they
    truly hold (the true lines its found lines cover)."""
    raw_texts, cut_texts, regions, right = [], [], 0, 0
    read_seconds = 0.0
    for item in found:
        units = by_region(item.lines)
        began = time.perf_counter()
        read = recognizer.predict_batch([region_image(item.page.pixels, u) for u in units])
        read_seconds += time.perf_counter() - began
        readings = region_readings(units, [Reading(text, 1.0, ()) for text in read])
        raw_texts.append("\n".join(read))
        cut_texts.append("\n".join(readings[line.id].text for line in item.lines))
        matched = dict(
            match_lines([f.outline for f in item.lines], [t.polygon for t in item.page.lines])
        )
        start = 0
        for unit, text in zip(units, read, strict=True):
            held = sum(1 for i in range(start, start + len(unit)) if i in matched)
            regions, right = regions + 1, right + (len(text.split("\n")) == held)
            start += len(unit)
    truths = [truth(item.page) for item in found]
    segment_seconds = sum(item.seconds for item in found)
    n = len(found)
    return {
        "regions": regions,
        "regions_with_their_line_count": round(right / max(regions, 1), 4),
        "cer_as_read": round(float(char_error_rate(raw_texts, truths)), 4),
        "cer": round(float(char_error_rate(cut_texts, truths)), 4),
        "seconds_a_page": round((segment_seconds + read_seconds) / n, 2),
        "read_seconds_a_page": round(read_seconds / n, 2),
    }


def kraken_seconds(composed: list[ComposedPage]) -> float | None:
    """Seconds a page of `kraken -i PAGE OUT segment -bl`, or None without its command."""
    kraken = shutil.which("kraken") or str(Path(sys.executable).with_name("kraken"))
    if not Path(kraken).exists():
        return None
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        for i, page in enumerate(composed):
            image = Path(folder) / f"page{i}.png"
            Image.fromarray(page.pixels).save(image)
            command = [kraken, "-i", str(image), str(image.with_suffix(".json")), "segment", "-bl"]
            subprocess.run(command, check=True, capture_output=True)
        return round((time.perf_counter() - began) / len(composed), 2)


def read_scans(recognizer: Recognizer, folder: Path, smoke: bool = False) -> list[Path]:
    """Three pages of the scan-like held-out set saved as JPEGs and read as `predict page.jpg
    --out FOLDER --overlay` reads them: text, PAGE and the overlay beside each."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i, page in enumerate(pages(1 if smoke else 3, seed=7, name="scan", smoke=smoke)):
        Image.fromarray(page.pixels).save(folder / f"page{i}.jpg", quality=90)
        images.append(folder / f"page{i}.jpg")
    written: list[Path] = []
    for path, read in read_page_images(recognizer, images, folder, draw=True):
        if not isinstance(read, PageImageReading):
            raise SystemExit(f"pages: {path}: {read}")
        written += read.written
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a line reader")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--paragraphs", type=Path, help="a paragraph reader, read beside it")
    parser.add_argument("--scans", type=Path, help="folder for three scan-like pages, read")
    add_arguments(parser)
    args = parser.parse_args(argv)
    count = 2 if args.smoke else args.pages
    recognizer = load_recognizer(str(args.checkpoint))
    composed = pages(count, smoke=args.smoke)
    found = find(composed)
    result = measure(recognizer, found)
    if args.paragraphs:
        paragraphs = measure_paragraphs(load_recognizer(str(args.paragraphs)), found)
        result["paragraph_reader"] = {"checkpoint": checkpoint_name(args.paragraphs), **paragraphs}
    result["kraken_segment_seconds_a_page"] = kraken_seconds(
        composed[: 1 if args.smoke else KRAKEN_PAGES]
    )
    print_table([{k: v for k, v in result.items() if not isinstance(v, dict)}])
    if args.paragraphs:
        print_table([paragraphs])
    if args.scans:
        for path in read_scans(recognizer, args.scans, args.smoke):
            print(f"wrote {path}")
    if args.smoke and not args.out:
        return
    results = {"machine": machine(), "checkpoint": checkpoint_name(args.checkpoint), **result}
    write("pages", results, args.out)


if __name__ == "__main__":
    main()
