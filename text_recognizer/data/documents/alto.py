"""ALTO, as the Library of Congress schemas v2 to v4 define it (what library OCR pipelines
export).

`Description/sourceImageInformation/fileName` names the image, resolved beside the XML. Lines are
the `TextLine`s in document order: `HPOS`/`VPOS`/`WIDTH`/`HEIGHT` give the box and
`Shape/Polygon@POINTS` (v3.1 on) the outline; `BASELINE` is a height (to v4.1) or a polyline
(v4.2). The text is the `String@CONTENT`s joined by single spaces (what `SP` marks), then the
`HYP` hyphen: what the line shows, whatever `SUBS_CONTENT` the hyphenated word completes to.
Coordinates are in `MeasurementUnit`: `pixel`, or `mm10` (1/10 mm) and `inch1200` (1/1200 inch),
converted with the image's resolution, or where it records none, with the page's size in those
units against the image's pixels.

Readings go back as the line's words: one `String` (`CONTENT`, `WC`) per word, `SP` between
them. When the line had as many `String`s as the reading has words, each keeps its own
attributes (position, style, ID) and only its `CONTENT` and `WC` change; otherwise the words
replace them without positions, which the schema allows.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from xml.etree.ElementTree import Element

from text_recognizer.data.documents import xml
from text_recognizer.data.documents.images import page_info, resolve_image
from text_recognizer.data.documents.record import (
    Box,
    Document,
    DocumentError,
    Line,
    Point,
    Reading,
    Skipped,
    bounds,
    by_region,
    format_points,
    make_line,
    parse_numbers,
    parse_points,
    region_outline,
    words,
)

NAMESPACES = {f"http://www.loc.gov/standards/alto/ns-v{v}#": f"v{v}" for v in (2, 3, 4)}
UNITS_PER_INCH = {"mm10": 254.0, "inch1200": 1200.0}
WORDS = ("String", "SP", "HYP")


def read(path: Path, root: Element) -> Document:
    namespace, local = xml.split_tag(root.tag)
    if local != "alto":
        raise DocumentError(path, f"ALTO root element is {local!r}, not 'alto'")

    q = xml.qualifier(namespace)
    filename = root.findtext(f"{q('Description')}/{q('sourceImageInformation')}/{q('fileName')}")
    if not filename or not filename.strip():
        raise DocumentError(path, "no Description/sourceImageInformation/fileName")
    image = resolve_image(path, filename.strip())
    size, dpi = page_info(path, image)
    scale = _scale(path, root, q, size, dpi)
    lines: list[Line] = []
    skipped: list[Skipped] = []
    for order, element in enumerate(root.iter(q("TextLine"))):
        line_id = line_key(element.attrib, order)
        box = _box(element, path, line_id, scale)
        polygon = element.find(f"{q('Shape')}/{q('Polygon')}")
        points = None if polygon is None else polygon.get("POINTS")
        outline = None if points is None else parse_points(points, path, line_id, "POINTS")
        record = make_line(
            line_id,
            box,
            None if outline is None else [_scaled(p, scale) for p in outline],
            _baseline(element, path, line_id, scale, box),
            _text(element, q),
            order,
            size,
        )
        if isinstance(record, Line):
            lines.append(record)
        else:
            skipped.append(record)
    return Document(path, image, f"ALTO {NAMESPACES[namespace]}", tuple(lines), tuple(skipped))


def line_key(attributes: Mapping[str, str], order: int) -> str:
    """A line's `ID`, or (the schema makes it optional) its place among the TextLines."""
    return attributes.get("ID") or f"TextLine[{order}]"


Scale = tuple[float, float]


def _scale(
    path: Path,
    root: Element,
    q: Callable[[str], str],
    size: tuple[int, int],
    dpi: tuple[float, float] | None,
) -> Scale:
    """Pixels per unit, horizontally and vertically."""
    unit = (root.findtext(f"{q('Description')}/{q('MeasurementUnit')}") or "pixel").strip()
    if unit == "pixel":
        return 1.0, 1.0
    if unit not in UNITS_PER_INCH:
        raise DocumentError(path, f"unknown MeasurementUnit {unit!r}: pixel, mm10 or inch1200")
    if dpi is not None:
        return dpi[0] / UNITS_PER_INCH[unit], dpi[1] / UNITS_PER_INCH[unit]
    page = root.find(f"{q('Layout')}/{q('Page')}")
    width, height = (None, None) if page is None else (page.get("WIDTH"), page.get("HEIGHT"))
    if not width or not height:
        raise DocumentError(
            path,
            f"MeasurementUnit {unit} needs the image's resolution: the image records none and "
            "the Page has no WIDTH and HEIGHT",
        )
    w, h = (parse_numbers(v, path, "Page", "WIDTH and HEIGHT")[0] for v in (width, height))
    return size[0] / w, size[1] / h


def _scaled(point: Point, scale: Scale) -> Point:
    return point[0] * scale[0], point[1] * scale[1]


def _box(element: Element, path: Path, line_id: str, scale: Scale) -> Box | None:
    values = [element.get(k) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT")]
    if any(v is None for v in values):
        return None
    x, y, w, h = (
        parse_numbers(v or "", path, line_id, "HPOS/VPOS/WIDTH/HEIGHT")[0] for v in values
    )
    (x0, y0), (x1, y1) = _scaled((x, y), scale), _scaled((x + w, y + h), scale)
    return x0, y0, x1, y1


def _baseline(
    element: Element, path: Path, line_id: str, scale: Scale, box: Box | None
) -> list[Point] | None:
    value = element.get("BASELINE")
    if value is None:
        return None
    numbers = parse_numbers(value, path, line_id, "BASELINE")
    if len(numbers) == 1:  # to v4.1: the baseline's height across the line
        if box is None:
            return None
        y = numbers[0] * scale[1]
        return [(box[0], y), (box[2], y)]
    return [_scaled(p, scale) for p in parse_points(value, path, line_id, "BASELINE")]


def _text(line: Element, q: Callable[[str], str]) -> str | None:
    words = [s.get("CONTENT", "") for s in line.findall(q("String"))]
    hyphen = "".join(h.get("CONTENT", "") for h in line.findall(q("HYP")))
    if not words and not hyphen:
        return None
    return " ".join(words) + hyphen


def write(path: Path, data: bytes, readings: Mapping[str, Reading]) -> bytes:
    """`data` with each line of `readings` (by `line_key`) holding its reading as words."""
    encode = xml.encoder(data, path)
    edits: list[xml.Edit] = []
    lines = [span for span in xml.spans(data).walk() if span.local == "TextLine"]
    for order, span in enumerate(lines):
        reading = readings.get(line_key(span.attributes, order))
        if reading is not None:
            edits += _line_edits(data, span, reading, encode)
    return xml.splice(data, edits)


def _line_edits(
    data: bytes, line: xml.Span, reading: Reading, encode: Callable[[str], bytes]
) -> list[xml.Edit]:
    old = [child for child in line.children if child.local in WORDS]
    run = _words(data, line.prefix, old, reading, encode)
    if old:
        return [(old[0].start, old[-1].end, run)]
    if line.open_end == line.end:
        return xml.rewrite(data, line, {}, run)
    shape = line.named("Shape")
    if shape:
        return [(shape[0].end, shape[0].end, xml.own_line(data, shape[0].start) + run)]
    return [(line.open_end, line.open_end, run)]


def _words(
    data: bytes,
    prefix: str,
    old: list[xml.Span],
    reading: Reading,
    encode: Callable[[str], bytes],
) -> bytes:
    """The reading as `String`s and `SP`s, laid out as the old ones were."""
    strings = [s for s in old if s.local == "String"]
    spaces = [s for s in old if s.local == "SP"]
    written = words(reading.text) or [""]
    confidences = reading.word_confidences
    if len(confidences) != len(written):
        confidences = (reading.confidence,) * len(written)
    keep = len(strings) == len(written)
    elements = []
    for i, (word, confidence) in enumerate(zip(written, confidences, strict=True)):
        attributes = {
            "CONTENT": encode(xml.attribute_value(word)),
            "WC": encode(f"{confidence:.3f}"),
        }
        if keep:
            tag = xml.rewrite(data, strings[i], attributes, None)[0][2]
            elements.append(tag + data[strings[i].open_end : strings[i].end])
        else:
            elements.append(xml.element(prefix, "String", attributes, None))
    gap = data[old[0].end : old[1].start] if len(old) > 1 else b""
    gap = gap if not gap.strip() else b""
    run = elements[0]
    for i, element in enumerate(elements[1:]):
        space = spaces[i] if keep and i < len(spaces) else None
        sp = data[space.start : space.end] if space else xml.element(prefix, "SP", {}, None)
        run += gap + sp + gap + element
    return run


def create(
    document: Document, readings: Mapping[str, Reading], image: str, size: tuple[int, int]
) -> bytes:
    """A new ALTO v4 file (4.2: baselines as polylines) of `document`'s lines (a found page's)
    with their readings: a `TextBlock` a region, in reading order; each line's box, outline,
    baseline and words with their confidences; `image` names its image (relative to the file)."""
    namespace = "http://www.loc.gov/standards/alto/ns-v4#"
    root = ET.Element("alto", xmlns=namespace, SCHEMAVERSION="4.2")  # not ElementTree's ns0:
    description = ET.SubElement(root, "Description")
    ET.SubElement(description, "MeasurementUnit").text = "pixel"
    source = ET.SubElement(description, "sourceImageInformation")
    ET.SubElement(source, "fileName").text = image
    page = ET.SubElement(
        ET.SubElement(root, "Layout"),
        "Page",
        ID="p0",
        PHYSICAL_IMG_NR="1",
        WIDTH=str(size[0]),
        HEIGHT=str(size[1]),
    )
    space = ET.SubElement(page, "PrintSpace", _position((0, 0, *size)))
    for index, lines in enumerate(by_region(document.lines)):
        region = region_outline(lines)
        block = ET.SubElement(space, "TextBlock", {"ID": f"r{index}", **_position(bounds(region))})
        for line in lines:
            attributes = {"ID": line.id, **_position(line.box)}
            if line.baseline:
                attributes["BASELINE"] = format_points(line.baseline)
            element = ET.SubElement(block, "TextLine", attributes)
            shape = ET.SubElement(element, "Shape")
            ET.SubElement(shape, "Polygon", POINTS=format_points(line.outline))
            reading = readings.get(line.id, Reading("", 0.0, ()))
            written = words(reading.text) or [""]
            confidences = reading.word_confidences
            if len(confidences) != len(written):
                confidences = (reading.confidence,) * len(written)
            for i, (word, confidence) in enumerate(zip(written, confidences, strict=True)):
                if i:
                    ET.SubElement(element, "SP")
                ET.SubElement(element, "String", CONTENT=word, WC=f"{confidence:.3f}")
    ET.indent(root)
    return ET.tostring(root, "utf-8", xml_declaration=True)


def _position(box: Box) -> dict[str, str]:
    x0, y0, x1, y1 = (round(v) for v in box)
    return {"HPOS": str(x0), "VPOS": str(y0), "WIDTH": str(x1 - x0), "HEIGHT": str(y1 - y0)}
