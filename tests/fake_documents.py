"""Documents written the way their schemas define them, for the readers, the datamodule and
predict: PAGE XML 2013-07-15 and 2019-07-15, ALTO v2 and v4, and line folders; page images of
plain paper with dark bars where the lines are, or rendered writing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from helpers import compose_with
from PIL import Image

from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.spec import CHECKPOINT_KEY
from training.run import build

PAGE_VERSIONS = ("2013-07-15", "2019-07-15")
ALTO_VERSIONS = (2, 4)
PAPER, INK = 235, 30


def page_ns(version: str) -> str:
    return f"http://schema.primaresearch.org/PAGE/gts/pagecontent/{version}"


def alto_ns(version: int) -> str:
    return f"http://www.loc.gov/standards/alto/ns-v{version}#"


@dataclass
class FakeLine:
    id: str
    box: tuple[int, int, int, int]
    text: str | None


def lines_of(
    texts: list[str | None], top: int = 20, height: int = 30, gap: int = 20
) -> list[FakeLine]:
    """Lines stacked down a page, 300 pixels wide."""
    return [
        FakeLine(f"l{i}", (10, top + i * (height + gap), 310, top + i * (height + gap) + height), t)
        for i, t in enumerate(texts)
    ]


def page_image(path: Path, size: tuple[int, int], lines: list[FakeLine], **save: Any) -> Path:
    """Paper with a dark bar of ink across the middle of each line's box."""
    pixels = np.full((size[1], size[0]), PAPER, dtype=np.uint8)
    for line in lines:
        x0, y0, x1, y1 = line.box
        pixels[(y0 + y1) // 2 - 3 : (y0 + y1) // 2 + 3, x0 + 5 : x1 - 5] = INK
    Image.fromarray(pixels).save(path, **save)
    return path


def _points(box: tuple[int, int, int, int]) -> str:
    x0, y0, x1, y1 = box
    return f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"


def page_xml(version: str, image: str, lines: list[FakeLine], size: tuple[int, int]) -> str:
    """One region of lines; each with Coords, a Baseline, and its text if it has one."""
    rows = []
    for line in lines:
        x0, _, x1, y1 = line.box
        rows.append(f'      <TextLine id="{line.id}" custom="readingOrder {{index:0;}}">')
        rows.append(f'        <Coords points="{_points(line.box)}"/>')
        rows.append(f'        <Baseline points="{x0},{y1 - 5} {x1},{y1 - 5}"/>')
        if line.text is not None:
            rows.append(f"        <TextEquiv><Unicode>{_escape(line.text)}</Unicode></TextEquiv>")
        rows.append("      </TextLine>")
    body = "\n".join(rows)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<PcGts xmlns="{page_ns(version)}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "  <Metadata>\n    <Creator>tests</Creator>\n    <Created>2026-01-01T00:00:00</Created>\n"
        "    <LastChange>2026-01-01T00:00:00</LastChange>\n  </Metadata>\n"
        f'  <Page imageFilename=\'{image}\' imageWidth="{size[0]}" imageHeight="{size[1]}">\n'
        '    <TextRegion id="r0">\n'
        f'      <Coords points="0,0 {size[0]},0 {size[0]},{size[1]} 0,{size[1]}"/>\n'
        f"{body}\n    </TextRegion>\n  </Page>\n</PcGts>\n"
    )


def alto_xml(
    version: int, image: str, lines: list[FakeLine], unit: str = "pixel", scale: float = 1.0
) -> str:
    """One block of lines in `unit` (`scale` units a pixel); v4 lines also carry a polygon."""

    def u(value: float) -> str:
        return f"{value * scale:g}"

    rows = []
    for line in lines:
        x0, y0, x1, y1 = line.box
        rows.append(
            f'        <TextLine ID="{line.id}" HPOS="{u(x0)}" VPOS="{u(y0)}" WIDTH="{u(x1 - x0)}" '
            f'HEIGHT="{u(y1 - y0)}" BASELINE="{u(y1 - 5)}">'
        )
        if version >= 4:
            polygon = " ".join(
                f"{u(x)},{u(y)}" for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            )
            rows.append(f'          <Shape><Polygon POINTS="{polygon}"/></Shape>')
        for i, word in enumerate((line.text or "").split(" ") if line.text else []):
            if i:
                rows.append("          <SP/>")
            rows.append(f'          <String CONTENT="{_escape(word)}" HPOS="{u(x0 + 40 * i)}"/>')
        rows.append("        </TextLine>")
    body = "\n".join(rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<alto xmlns="{alto_ns(version)}">\n'
        f"  <Description>\n    <MeasurementUnit>{unit}</MeasurementUnit>\n"
        f"    <sourceImageInformation>\n      <fileName>{image}</fileName>\n"
        "    </sourceImageInformation>\n  </Description>\n"
        '  <Layout>\n    <Page ID="p0" PHYSICAL_IMG_NR="1">\n      <PrintSpace>\n'
        f'      <TextBlock ID="b0">\n{body}\n      </TextBlock>\n'
        "      </PrintSpace>\n    </Page>\n  </Layout>\n</alto>\n"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def write_page(folder: Path, name: str, lines: list[FakeLine], version: str = "2019-07-15") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    size = (400, max(line.box[3] for line in lines) + 20)
    page_image(folder / f"{name}.png", size, lines)
    path = folder / f"{name}.xml"
    path.write_text(page_xml(version, f"{name}.png", lines, size), encoding="utf-8")
    return path


def write_alto(folder: Path, name: str, lines: list[FakeLine], version: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    size = (400, max(line.box[3] for line in lines) + 20)
    page_image(folder / f"{name}.png", size, lines)
    path = folder / f"{name}.xml"
    path.write_text(alto_xml(version, f"{name}.png", lines), encoding="utf-8")
    return path


def write_line_folder(folder: Path, texts: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in texts.items():
        page_image(folder / f"{name}.png", (200, 40), [FakeLine(name, (0, 0, 200, 40), text)])
        (folder / f"{name}.gt.txt").write_text(text + "\n", encoding="utf-8")
        paths.append(folder / f"{name}.png")
    return paths


def untrained_checkpoint(path: Path, *overrides: str) -> Path:
    """A checkpoint as training writes one, of the network `main.py <overrides>` builds, freshly
    initialised (seeded): what `init_from` and predict read, without the minutes training takes."""
    torch.manual_seed(0)
    _, model, _ = build(compose_with(*overrides, run_dir=path.parent), path.parent)
    assert isinstance(model, LitTransformer) and model.inference is not None
    torch.save({"state_dict": model.state_dict(), CHECKPOINT_KEY: model.inference.to_dict()}, path)
    return path
