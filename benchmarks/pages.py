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
  pages (its own command line, model loading included, as a user runs it).

    python -m benchmarks.pages --checkpoint runs/<run>/checkpoints/best.ckpt [--pages 50]

Results go to `benchmarks/results/pages.json`; `--overlays DIR` also writes three pages drawn
with their readings.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torchmetrics.functional.text import char_error_rate

from benchmarks.common import add_arguments, checkpoint_name, machine, print_table, write
from benchmarks.heldout import datamodule
from text_recognizer.data.documents import Line
from text_recognizer.data.documents.images import line_image
from text_recognizer.data.documents.overlay import overlay
from text_recognizer.data.documents.record import bounds
from text_recognizer.data.documents.segment import found_lines
from text_recognizer.data.pages.compose import ComposedPage, compose_page, match_lines
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.recognizer import Recognizer

KRAKEN_PAGES = 5
"""Pages `kraken segment -bl` is timed on (each call loads its model, as a user's does)."""


def pages(count: int, seed: int = 0, name: str = "plain") -> list[ComposedPage]:
    """`count` pages of the held-out set `name`'s test lines (`benchmarks.heldout`)."""
    lines = datamodule(name)
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


def measure(recognizer: Recognizer, composed: list[ComposedPage]) -> dict[str, Any]:
    found_total = true_total = matched_total = ordered = 0
    read_texts, cut_texts, truths = [], [], []
    segment_seconds = read_seconds = 0.0
    for page in composed:
        began = time.perf_counter()
        found = list(found_lines(Image.fromarray(page.pixels)))
        segmented = time.perf_counter()
        texts = read_lines(recognizer, page.pixels, found)
        read_seconds += time.perf_counter() - segmented
        segment_seconds += segmented - began
        matched = match_lines([f.outline for f in found], [t.polygon for t in page.lines])
        found_total, true_total = found_total + len(found), true_total + len(page.lines)
        matched_total += len(matched)
        ordered += [j for _, j in matched] == sorted(j for _, j in matched)
        read_texts.append("\n".join(texts))
        cut_texts.append("\n".join(read_lines(recognizer, page.pixels, true_lines(page))))
        truths.append("\n".join(line.text for line in page.lines))
    n = len(composed)
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


def draw(recognizer: Recognizer, folder: Path) -> list[Path]:
    """Three pages of the scan-like held-out set, found, read and drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, page in enumerate(pages(3, seed=7, name="scan")):
        found = list(found_lines(Image.fromarray(page.pixels)))
        texts = read_lines(recognizer, page.pixels, found)
        image = overlay(page.pixels, found, {f.id: t for f, t in zip(found, texts, strict=True)})
        path = folder / f"page{i}.png"
        image.save(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a line reader")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--overlays", type=Path, help="folder for three drawn pages")
    add_arguments(parser)
    args = parser.parse_args(argv)
    count = 2 if args.smoke else args.pages
    recognizer = load_recognizer(str(args.checkpoint))
    composed = pages(count)
    result = measure(recognizer, composed)
    result["kraken_segment_seconds_a_page"] = kraken_seconds(
        composed[: 1 if args.smoke else KRAKEN_PAGES]
    )
    print_table([result])
    if args.overlays:
        for path in draw(recognizer, args.overlays):
            print(f"wrote {path}")
    if args.smoke and not args.out:
        return
    results = {"machine": machine(), "checkpoint": checkpoint_name(args.checkpoint), **result}
    write("pages", results, args.out)


if __name__ == "__main__":
    main()
