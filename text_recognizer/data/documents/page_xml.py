"""PAGE XML, as PRImA's page-content schemas 2013-07-15 and 2019-07-15 define it (what
Transkribus and eScriptorium export).

`PcGts/Page@imageFilename` names the image, resolved beside the XML. Lines are the `TextLine`s of
every `TextRegion` (regions nest): `Coords@points` is the outline, `Baseline@points` the optional
baseline, `TextEquiv/Unicode` the text; of several `TextEquiv`s the one with `index="1"`, else
the first. Regions are read in the order `ReadingOrder` gives (its groups flattened: ordered ones
by `index`, unordered ones as listed), then those it leaves out in document order; lines within a
region in document order.

Readings go back into that chosen `TextEquiv` (its `Unicode`, and `conf`), or into a new
`TextEquiv` after the line's `Coords`, `Baseline` and `Word`s, where the schema puts it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from xml.etree.ElementTree import Element

from text_recognizer.data.documents import xml
from text_recognizer.data.documents.images import page_info, resolve_image
from text_recognizer.data.documents.record import (
    Document,
    DocumentError,
    Line,
    Reading,
    Skipped,
    by_region,
    format_points,
    make_line,
    parse_points,
    region_outline,
)

VERSIONS = ("2013-07-15", "2019-07-15")
NAMESPACES = {f"http://schema.primaresearch.org/PAGE/gts/pagecontent/{v}": v for v in VERSIONS}
GROUPS = ("OrderedGroup", "UnorderedGroup", "OrderedGroupIndexed", "UnorderedGroupIndexed")
REFERENCES = ("RegionRef", "RegionRefIndexed")
BEFORE_TEXT = ("AlternativeImage", "Coords", "Baseline", "Word")
"""What the schema puts before a line's TextEquiv."""
T = TypeVar("T")


def read(path: Path, root: Element) -> Document:
    namespace, local = xml.split_tag(root.tag)
    if local != "PcGts":
        raise DocumentError(path, f"PAGE root element is {local!r}, not 'PcGts'")

    q = xml.qualifier(namespace)
    page = root.find(q("Page"))
    if page is None or not page.get("imageFilename"):
        raise DocumentError(path, "no Page element with an imageFilename")
    image = resolve_image(path, page.get("imageFilename", ""))
    size, _ = page_info(path, image)
    rank = {region: i for i, region in enumerate(reading_order(page, path))}
    regions = sorted(page.iter(q("TextRegion")), key=lambda r: rank.get(r.get("id", ""), len(rank)))
    lines: list[Line] = []
    skipped: list[Skipped] = []
    order = 0
    for region in regions:
        for element in region.findall(q("TextLine")):
            line_id = element.get("id") or f"{region.get('id')}/TextLine[{order}]"
            coords, baseline = element.find(q("Coords")), element.find(q("Baseline"))
            points = coords.get("points") if coords is not None else None
            base = baseline.get("points") if baseline is not None else None
            record = make_line(
                line_id,
                None,
                None if points is None else parse_points(points, path, line_id, "Coords points"),
                None if base is None else parse_points(base, path, line_id, "Baseline points"),
                _text(element, q),
                order,
                size,
                region.get("id"),
            )
            if isinstance(record, Line):
                lines.append(record)
            else:
                skipped.append(record)
            order += 1
    return Document(path, image, f"PAGE {NAMESPACES[namespace]}", tuple(lines), tuple(skipped))


def _chosen(equivs: list[T], index: Callable[[T], str | None]) -> T | None:
    """The TextEquiv with `index="1"`, else the first."""
    return next((e for e in equivs if index(e) == "1"), equivs[0] if equivs else None)


def _text(line: Element, q: Callable[[str], str]) -> str | None:
    equiv = _chosen(line.findall(q("TextEquiv")), lambda e: e.get("index"))
    if equiv is None:
        return None
    unicode = equiv.find(q("Unicode"))
    return (unicode.text or "") if unicode is not None else ""


def reading_order(page: Element, path: Path) -> list[str]:
    """Region ids in the order `ReadingOrder` gives (empty without one)."""
    ids: list[str] = []

    def walk(group: Element) -> None:
        members = [m for m in group if xml.split_tag(m.tag)[1] in GROUPS + REFERENCES]
        if xml.split_tag(group.tag)[1].startswith("Ordered"):
            members.sort(key=lambda m: _index(m, path))
        for member in members:
            if ref := member.get("regionRef"):  # a group's own region doubles as its head
                ids.append(ref)
            if xml.split_tag(member.tag)[1] in GROUPS:
                walk(member)

    for element in page:
        if xml.split_tag(element.tag)[1] == "ReadingOrder":
            walk(element)
    return list(dict.fromkeys(ids))


def _index(member: Element, path: Path) -> int:
    try:
        return int(member.get("index", ""))
    except ValueError:
        raise DocumentError(
            path,
            f"ReadingOrder index {member.get('index')!r} of {member.get('regionRef')!r} "
            "is not a number",
        ) from None


def write(path: Path, data: bytes, readings: Mapping[str, Reading]) -> bytes:
    """`data` with each line of `readings` (by id) holding its reading; the rest unchanged."""
    encode = xml.encoder(data, path)
    edits: list[xml.Edit] = []
    for span in xml.spans(data).walk():
        reading = readings.get(span.attributes.get("id", "")) if span.local == "TextLine" else None
        if reading is not None:
            edits += _line_edits(data, span, reading, encode)
    return xml.splice(data, edits)


def _line_edits(
    data: bytes, line: xml.Span, reading: Reading, encode: Callable[[str], bytes]
) -> list[xml.Edit]:
    conf = {"conf": encode(f"{reading.confidence:.3f}")}
    content = encode(xml.text_content(reading.text))
    text = xml.element(line.prefix, "Unicode", {}, content)
    equiv = _chosen(line.named("TextEquiv"), lambda s: s.attributes.get("index"))
    if equiv is None:
        before = [c for c in line.children if c.local in BEFORE_TEXT]
        at = before[-1].end if before else line.open_end
        layout = xml.own_line(data, before[-1].start) if before else b""
        return [(at, at, layout + xml.element(line.prefix, "TextEquiv", conf, text))]
    unicode = equiv.named("Unicode")
    if unicode:
        return xml.rewrite(data, equiv, conf, None) + xml.rewrite(data, unicode[0], {}, content)
    if equiv.open_end == equiv.end:  # <TextEquiv/>; the schema requires a Unicode in it
        return xml.rewrite(data, equiv, conf, text)
    return [*xml.rewrite(data, equiv, conf, None), (equiv.close_start, equiv.close_start, text)]


def create(
    document: Document, readings: Mapping[str, Reading], image: str, size: tuple[int, int]
) -> bytes:
    """A new PAGE 2019 file of `document`'s lines (a found page's) with their readings: regions
    in reading order, each line's outline, baseline, text and confidence; `image` is the name
    the file gives its image by (relative to the file)."""
    namespace = f"http://schema.primaresearch.org/PAGE/gts/pagecontent/{VERSIONS[-1]}"
    root = ET.Element("PcGts", xmlns=namespace)  # a default namespace, not ElementTree's ns0:
    metadata = ET.SubElement(root, "Metadata")
    now = datetime.now(UTC).replace(microsecond=0).isoformat().removesuffix("+00:00")
    for name, value in (("Creator", "text-recognizer"), ("Created", now), ("LastChange", now)):
        ET.SubElement(metadata, name).text = value
    page = ET.SubElement(
        root, "Page", imageFilename=image, imageWidth=str(size[0]), imageHeight=str(size[1])
    )
    groups = by_region(document.lines)
    if groups:  # an OrderedGroup must hold a region
        order = ET.SubElement(ET.SubElement(page, "ReadingOrder"), "OrderedGroup", id="ro")
        for index in range(len(groups)):
            ET.SubElement(order, "RegionRefIndexed", index=str(index), regionRef=f"r{index}")
    for index, lines in enumerate(groups):
        region = ET.SubElement(page, "TextRegion", id=f"r{index}")
        ET.SubElement(region, "Coords", points=format_points(region_outline(lines)))
        for line in lines:
            element = ET.SubElement(region, "TextLine", id=line.id)
            ET.SubElement(element, "Coords", points=format_points(line.outline))
            if line.baseline:
                ET.SubElement(element, "Baseline", points=format_points(line.baseline))
            if (reading := readings.get(line.id)) is not None:
                equiv = ET.SubElement(element, "TextEquiv", conf=f"{reading.confidence:.3f}")
                ET.SubElement(equiv, "Unicode").text = reading.text
        text = "\n".join(readings[line.id].text for line in lines if line.id in readings)
        ET.SubElement(ET.SubElement(region, "TextEquiv"), "Unicode").text = text
    ET.indent(root)
    return ET.tostring(root, "utf-8", xml_declaration=True)
