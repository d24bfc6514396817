"""The fine-tuning curve: a line checkpoint fine-tuned on 50, 200 and 1,000 lines of an "own
collection", with the CER on the collection's test pages before and after, and the wall time.

The collection is pages of handwriting rendered in held-out font families (the default
checkpoint never trained on them), one hand a page, exported as PAGE XML 2019-07-15 the way
eScriptorium writes it: a polygon and a baseline per line, each line turned by up to a degree,
so the reader masks and straightens as it would on a scan. Each training set takes the first
pages of every hand in turn (50 lines: one page each); validation and test are pages of their
own, the same for every run. Each run is `main.py +experiment=finetune_documents`; the CER
before and after is `text-recognizer predict` on the test pages against their text. `--smoke`
renders a page of 2 or 3 lines a hand and split in two packaged hands, and fine-tunes on 2
lines for 2 steps.

    python -m benchmarks.finetune_documents --checkpoint CKPT [--runs runs/finetune-curve]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from PIL import Image
from torchmetrics.functional.text import char_error_rate

from benchmarks.common import (
    ROOT,
    add_arguments,
    checkpoint_name,
    machine,
    print_table,
    results_folder,
    write,
)
from text_recognizer.data.documents import read_document
from text_recognizer.data.synthetic.fonts import Font, load_fonts
from text_recognizer.data.synthetic.render import Augmentation, render_line
from text_recognizer.data.synthetic.text import sample_line
from text_recognizer.data.transforms.ink import paper_level

SPLITS = ("train", "val", "test")
LINE_HEIGHT, LINE_SPACING, MARGIN, PAGE_WIDTH = 48, 96, 80, 1600
MAX_TURN_DEG = 1.0
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"


@dataclass(frozen=True)
class Settings:
    """The collection, the training sets and what each run changes of the experiment."""

    hands: tuple[str, ...]  # font families, held out of the default's training
    pages: tuple[int, int, int]  # per hand, for training, validation and test
    lines_per_page: tuple[int, int]  # alternating
    sizes: tuple[int, ...]  # training lines, a run each
    overrides: tuple[str, ...]


FULL = Settings(  # a page of each hand makes 50 lines
    hands=("cedarville-cursive", "homemade-apple", "indie-flower", "reenie-beanie"),
    pages=(20, 1, 2),
    lines_per_page=(12, 13),
    sizes=(50, 200, 1000),
    overrides=(),
)
SMOKE = Settings(  # the held-out families that install with the package: no `make fonts`
    hands=("indie-flower", "satisfy"),
    pages=(1, 1, 1),
    lines_per_page=(2, 3),
    sizes=(2,),
    overrides=("trainer.max_steps=2", "trainer.val_check_interval=2"),
)


def compose_page(font: Font, lines: int, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """A page image (uint8, dark on light) and its lines: text, polygon and baseline."""
    height = 2 * MARGIN + lines * LINE_SPACING
    page = np.full((height, PAGE_WIDTH), 236.0) + rng.normal(0, 3, (height, PAGE_WIDTH))
    records = []
    for i in range(lines):
        while True:
            text = sample_line(rng, 70)
            text = text.upper() if font.uppercase_only else text
            if not font.can_draw(text):
                continue
            width = PAGE_WIDTH - 2 * MARGIN
            line = render_line(text, font, rng, LINE_HEIGHT, width, Augmentation(kinds=frozenset()))
            if line is not None:
                break
        paper = paper_level(line)
        darkness = np.clip((paper - line.astype(np.float64)) / max(paper, 1), 0, 1)
        ink = np.flatnonzero(darkness.max(axis=0) > 0.3)
        right = int(ink[-1]) + 4 if ink.size else LINE_HEIGHT
        turned = Image.fromarray((darkness[:, :right] * 255).astype(np.uint8)).rotate(
            angle := float(rng.uniform(-MAX_TURN_DEG, MAX_TURN_DEG)),
            expand=True,
            resample=Image.Resampling.BILINEAR,
        )
        x0, y0 = MARGIN + int(rng.integers(0, 20)), MARGIN + i * LINE_SPACING
        region = page[y0 : y0 + turned.height, x0 : x0 + turned.width]
        region *= (
            1 - np.asarray(turned, dtype=np.float64)[: region.shape[0], : region.shape[1]] / 255
        )
        corners = _turned(
            [(0, 0), (right, 0), (right, LINE_HEIGHT), (0, LINE_HEIGHT)], angle, right
        )
        base = _turned([(0, 0.78 * LINE_HEIGHT), (right, 0.78 * LINE_HEIGHT)], angle, right)
        records.append(
            {
                "text": text,
                "polygon": [(x0 + x, y0 + y) for x, y in corners],
                "baseline": [(x0 + x, y0 + y) for x, y in base],
            }
        )
    return page.clip(0, 255).astype(np.uint8), records


def _turned(
    points: list[tuple[float, float]], angle: float, width: float
) -> list[tuple[float, float]]:
    """`points` of a (LINE_HEIGHT x width) line where PIL's `rotate(angle, expand=True)` puts
    them: turned counterclockwise about the centre, shifted into the expanded canvas."""
    theta = np.deg2rad(angle)
    cx, cy = width / 2, LINE_HEIGHT / 2
    cos, sin = np.cos(theta), np.sin(theta)
    out_w = abs(width * cos) + abs(LINE_HEIGHT * sin)
    out_h = abs(width * sin) + abs(LINE_HEIGHT * cos)
    return [
        (
            (x - cx) * cos + (y - cy) * sin + out_w / 2,
            -(x - cx) * sin + (y - cy) * cos + out_h / 2,
        )
        for x, y in points
    ]


def page_xml(image: str, size: tuple[int, int], lines: list[dict], page_id: str) -> str:
    def points(values: list[tuple[float, float]]) -> str:
        return " ".join(f"{round(x)},{round(y)}" for x, y in values)

    body = "\n".join(
        f'      <TextLine id="{page_id}_l{i}">\n'
        f'        <Coords points="{points(line["polygon"])}"/>\n'
        f'        <Baseline points="{points(line["baseline"])}"/>\n'
        f"        <TextEquiv><Unicode>{_escape(line['text'])}</Unicode></TextEquiv>\n"
        "      </TextLine>"
        for i, line in enumerate(lines)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<PcGts xmlns="{PAGE_NS}">\n'
        "  <Metadata><Creator>benchmarks.finetune_documents</Creator>"
        "<Created>2026-01-01T00:00:00</Created><LastChange>2026-01-01T00:00:00</LastChange>"
        "</Metadata>\n"
        f'  <Page imageFilename="{image}" imageWidth="{size[0]}" imageHeight="{size[1]}">\n'
        '    <ReadingOrder><OrderedGroup id="ro"><RegionRefIndexed index="0" regionRef="r0"/>'
        "</OrderedGroup></ReadingOrder>\n"
        f'    <TextRegion id="r0">\n      <Coords points="0,0 {size[0]},0 {size[0]},{size[1]} '
        f'0,{size[1]}"/>\n{body}\n    </TextRegion>\n  </Page>\n</PcGts>\n'
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_collection(folder: Path, settings: Settings, seed: int = 0) -> dict[str, list[Path]]:
    """Every page of every split, one hand a page; the pages' XML paths by split."""
    pages: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for s, (split, per_hand) in enumerate(zip(SPLITS, settings.pages, strict=True)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for k in range(per_hand):
            for h, hand in enumerate(settings.hands):
                font = load_fonts([hand])[0]
                rng = np.random.default_rng([seed, s, k, h])
                count = settings.lines_per_page[(k + h) % 2]
                image, lines = compose_page(font, count, rng)
                name = f"{split}-{k:02d}-{hand}"
                Image.fromarray(image).save(folder / split / f"{name}.png")
                xml = page_xml(f"{name}.png", (image.shape[1], image.shape[0]), lines, name)
                (folder / split / f"{name}.xml").write_text(xml, encoding="utf-8")
                pages[split].append(folder / split / f"{name}.xml")
    return pages


def training_pages(pages: list[Path], lines: int) -> list[Path]:
    """The first pages of every hand in turn, until they hold `lines` lines."""
    by_turn = sorted(pages, key=lambda p: (p.stem.split("-")[1], p.stem))
    chosen, total = [], 0
    for page in by_turn:
        if total >= lines:
            break
        chosen.append(page)
        total += page.read_text().count("<TextLine ")
    return chosen


def cer_on(checkpoint: Path, pages: list[Path], out: Path) -> float:
    """Corpus CER over every line of `pages` of what `text-recognizer predict` wrote into their
    copies, against the pages' own text."""
    command = [sys.executable, "-m", "text_recognizer.cli", "predict", "--checkpoint"]
    command += [str(checkpoint), "--out", str(out), *map(str, pages)]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    truth, read = [], []
    for page in pages:
        lines = read_document(page).lines
        written = ElementTree.parse(out / page.name).getroot()
        texts = {
            line.get("id"): line.findtext(f"{{{PAGE_NS}}}TextEquiv/{{{PAGE_NS}}}Unicode")
            for line in written.iter(f"{{{PAGE_NS}}}TextLine")
        }
        truth += [line.text or "" for line in lines]
        read += [texts[line.id] or "" for line in lines]
    return float(char_error_rate(read, truth))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--runs", default=ROOT / "runs" / "finetune-curve", type=Path)
    parser.add_argument("--sizes", help="training lines, comma-separated (default: 50,200,1000)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = SMOKE if args.smoke else FULL
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else settings.sizes
    collection = args.runs / "collection"
    pages = render_collection(collection, settings)
    before = cer_on(args.checkpoint, pages["test"], args.runs / "read-before")
    rows: list[dict[str, Any]] = []
    for size in sizes:
        train = training_pages(pages["train"], size)
        run_dir = args.runs / f"lines-{size}"
        overrides = [
            "+experiment=finetune_documents",
            f"model.init_from={args.checkpoint}",
            f"datamodule.train_sources=[{','.join(map(str, train))}]",
            f"datamodule.val_sources=[{collection / 'val'}]",
            f"datamodule.test_sources=[{collection / 'test'}]",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
            *settings.overrides,
        ]
        started = time.perf_counter()
        subprocess.run([sys.executable, "main.py", *overrides], cwd=ROOT, check=True)
        seconds = time.perf_counter() - started
        metrics = json.loads((run_dir / "metrics.json").read_text())
        after = cer_on(Path(metrics["checkpoint"]), pages["test"], run_dir / "read-after")
        lines = sum(p.read_text().count("<TextLine ") for p in train)
        rows.append(
            {
                "lines": lines,
                "pages": len(train),
                "cer_before": before,
                "cer_after": after,
                "test_cer_in_run": metrics["test/cer"],
                "steps": metrics["global_step"],
                "wall_seconds": round(seconds, 1),
            }
        )
        print_table(rows)
    test_lines = sum(p.read_text().count("<TextLine ") for p in pages["test"])
    results = {
        "checkpoint": checkpoint_name(args.checkpoint),
        "test_pages": len(pages["test"]),
        "test_lines": test_lines,
        "hands": list(settings.hands),
        "machine": machine(),
        "rows": rows,
    }
    write("finetune_documents", results, results_folder(args))


if __name__ == "__main__":
    main()
