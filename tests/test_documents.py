"""The document readers and writers: PAGE XML (2013-07-15, 2019-07-15), ALTO (v2, v4) and line
folders read into one record type; readings written back byte for byte around what changes;
lines cut by their polygons and straightened by their baselines; bad input named in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_documents import (
    ALTO_VERSIONS,
    INK,
    PAGE_VERSIONS,
    PAPER,
    alto_ns,
    alto_xml,
    lines_of,
    page_image,
    page_ns,
    page_xml,
    write_alto,
    write_line_folder,
    write_page,
)
from PIL import Image

from text_recognizer.data.documents import (
    DocumentError,
    Line,
    Reading,
    find_documents,
    read_document,
    write_readings,
)
from text_recognizer.data.documents.images import line_image

TEXTS = ["Straße & ſo", None, "§ 4 ½ café"]


@pytest.mark.parametrize("version", PAGE_VERSIONS)
def test_page_xml_reads_lines_and_writes_readings_back_byte_for_byte(
    version: str, tmp_path: Path
) -> None:
    lines = lines_of(TEXTS)
    path = write_page(tmp_path, "page", lines, version)
    document = read_document(path)
    assert document.format == f"PAGE {version}" and document.image == tmp_path / "page.png"
    assert [(line.id, line.text) for line in document.lines] == [
        (f"l{i}", t) for i, t in enumerate(TEXTS)
    ]
    first = document.lines[0]
    assert first.polygon == ((10, 20), (310, 20), (310, 50), (10, 50))
    assert first.box == (10, 20, 310, 50) and first.baseline == ((10, 45), (310, 45))

    readings = {
        "l0": Reading("Strasse <&> so", 0.9, (0.8, 0.95, 0.9)),
        "l1": Reading("new", 0.25, (0.25,)),
        "l2": Reading("§ 4 ½ café", 0.5, (0.5,) * 4),
    }
    written = write_readings(path, readings).decode()
    original = path.read_text()
    expected = (
        original.replace(
            "<TextEquiv><Unicode>Straße &amp; ſo</Unicode>",
            '<TextEquiv conf="0.900"><Unicode>Strasse &lt;&amp;&gt; so</Unicode>',
        )
        .replace(
            '        <Baseline points="10,95 310,95"/>\n',
            '        <Baseline points="10,95 310,95"/>\n'
            '        <TextEquiv conf="0.250"><Unicode>new</Unicode></TextEquiv>\n',
        )
        .replace("<TextEquiv><Unicode>§ 4 ½ café", '<TextEquiv conf="0.500"><Unicode>§ 4 ½ café')
    )
    assert written == expected
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "page.xml").write_text(written, encoding="utf-8")
    (tmp_path / "out" / "page.png").write_bytes((tmp_path / "page.png").read_bytes())
    again = read_document(tmp_path / "out" / "page.xml")
    assert [line.text for line in again.lines] == ["Strasse <&> so", "new", "§ 4 ½ café"]


@pytest.mark.parametrize("version", ALTO_VERSIONS)
def test_alto_reads_lines_and_writes_readings_back_byte_for_byte(
    version: int, tmp_path: Path
) -> None:
    lines = lines_of(TEXTS)
    path = write_alto(tmp_path, "alto", lines, version)
    document = read_document(path)
    assert document.format == f"ALTO v{version}"
    assert [line.text for line in document.lines] == TEXTS
    first = document.lines[0]
    assert first.box == (10, 20, 310, 50) and first.baseline == ((10, 45), (310, 45))
    assert first.polygon == (((10, 20), (310, 20), (310, 50), (10, 50)) if version >= 4 else None)

    readings = {
        "l0": Reading("Strasse & so", 0.9, (0.8, 0.95, 0.9)),  # as many words: positions kept
        "l1": Reading("two words", 0.5, (0.4, 0.6)),  # none before: new Strings
        "l2": Reading("café", 0.7, (0.7,)),  # fewer words: new Strings replace the old
    }
    written = write_readings(path, readings).decode()
    original = path.read_text()
    indent = "\n          "
    expected = (
        original.replace(
            '<String CONTENT="Straße" HPOS="10"/>',
            '<String CONTENT="Strasse" HPOS="10" WC="0.800"/>',
        )
        .replace(
            '<String CONTENT="&amp;" HPOS="50"/>', '<String CONTENT="&amp;" HPOS="50" WC="0.950"/>'
        )
        .replace('<String CONTENT="ſo" HPOS="90"/>', '<String CONTENT="so" HPOS="90" WC="0.900"/>')
        .replace(
            '<String CONTENT="§" HPOS="10"/>'
            + indent
            + "<SP/>"
            + indent
            + '<String CONTENT="4" HPOS="50"/>'
            + indent
            + "<SP/>"
            + indent
            + '<String CONTENT="½" HPOS="90"/>'
            + indent
            + "<SP/>"
            + indent
            + '<String CONTENT="café" HPOS="130"/>',
            '<String CONTENT="café" WC="0.700"/>',
        )
    )
    l1 = 'HEIGHT="30" BASELINE="95">' if version < 4 else "</Shape>"
    at = expected.index(l1, expected.index('ID="l1"')) + len(l1)
    new = '<String CONTENT="two" WC="0.400"/><SP/><String CONTENT="words" WC="0.600"/>'
    expected = expected[:at] + (indent + new if version >= 4 else new) + expected[at:]
    assert written == expected
    (tmp_path / "alto.xml").write_text(written, encoding="utf-8")
    assert [line.text for line in read_document(path).lines] == [r.text for r in readings.values()]


def test_alto_joins_strings_with_spaces_and_keeps_the_hyphen(tmp_path: Path) -> None:
    page_image(tmp_path / "p.png", (400, 100), [])
    line = (
        '<TextLine ID="t1" HPOS="10" VPOS="10" WIDTH="300" HEIGHT="40">'
        '<String CONTENT="Ein" WC="0.9"/><SP WIDTH="8"/><String CONTENT="Bei"/><SP/>'
        '<String CONTENT="spiel" SUBS_TYPE="HypPart1" SUBS_CONTENT="spielhaft"/><HYP CONTENT="-"/>'
        "</TextLine>"
    )
    xml = alto_xml(4, "p.png", []).replace('<TextBlock ID="b0">\n', f'<TextBlock ID="b0">{line}')
    (tmp_path / "a.xml").write_text(xml)
    assert [line.text for line in read_document(tmp_path / "a.xml").lines] == ["Ein Bei spiel-"]


def test_page_reading_order_comes_from_its_groups_else_from_the_document(tmp_path: Path) -> None:
    lines = lines_of(["first", "second", "third", "fourth"])
    path = write_page(tmp_path, "page", lines)
    regions = "\n".join(
        f'    <TextRegion id="r{i}"><Coords points="0,0 1,0 1,1"/>'
        f'<TextLine id="{line.id}"><Coords points="{line.box[0]},{line.box[1]} {line.box[2]},'
        f'{line.box[1]} {line.box[2]},{line.box[3]}"/><TextEquiv><Unicode>{line.text}</Unicode>'
        "</TextEquiv></TextLine></TextRegion>"
        for i, line in enumerate(lines)
    )
    ordered = (
        '    <ReadingOrder><OrderedGroup id="g">\n'
        '      <RegionRefIndexed index="2" regionRef="r0"/>\n'
        '      <OrderedGroupIndexed id="g1" index="0">'
        '<RegionRefIndexed index="1" regionRef="r1"/><RegionRefIndexed index="0" regionRef="r3"/>'
        "</OrderedGroupIndexed>\n"
        "    </OrderedGroup></ReadingOrder>\n"
    )
    head, _, _ = path.read_text().partition('    <TextRegion id="r0">')
    tail = "  </Page>\n</PcGts>\n"
    path.write_text(head + ordered + regions + "\n" + tail)
    assert [line.text for line in read_document(path).lines] == [
        "fourth",
        "second",
        "first",
        "third",
    ]
    path.write_text(head + regions + "\n" + tail)
    assert [line.text for line in read_document(path).lines] == [
        "first",
        "second",
        "third",
        "fourth",
    ]


def test_a_polygon_masks_everything_outside_it_with_paper(tmp_path: Path) -> None:
    """Ink everywhere but inside a triangle: the crop keeps the triangle as it was and shows
    paper wherever the polygon does not reach, the pad included."""
    rng = np.random.default_rng(0)
    page = np.full((120, 200), INK, dtype=np.uint8)
    triangle = [(20.0, 20.0), (180.0, 20.0), (100.0, 100.0)]
    canvas = Image.new("1", (200, 120), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(canvas).polygon(triangle, fill=1, outline=1)
    inside = np.asarray(canvas, dtype=bool)
    page[inside] = np.where(rng.random(inside.sum()) < 0.05, INK, PAPER)
    line = Line("t", (20, 20, 180, 100), tuple(triangle), None, "x", 0)
    crop = line_image(page, line)
    pad = round(0.15 * 80)
    assert crop.shape == (80 + 2 * pad, 160 + 2 * pad)
    window = inside[20 - pad : 100 + pad, 20 - pad : 180 + pad]
    assert (crop[~window] == PAPER).all()
    assert (crop[window] == page[20 - pad : 100 + pad, 20 - pad : 180 + pad][window]).all()


def test_a_baseline_straightens_a_slanted_line() -> None:
    page = np.full((200, 320), PAPER, dtype=np.uint8)
    columns = np.arange(20, 300)
    rows = np.round(60 + 0.25 * (columns - 20)).astype(int)
    for dy in range(3):
        page[rows + dy, columns] = INK
    polygon = ((15.0, 40.0), (305.0, 110.0), (305.0, 140.0), (15.0, 70.0))
    line = Line("t", (15, 40, 305, 140), polygon, ((20.0, 63.0), (300.0, 133.0)), "x", 0)
    crop = line_image(page, line)
    ink_rows = [
        np.flatnonzero(crop[:, c] < 128).mean()
        for c in range(crop.shape[1])
        if (crop[:, c] < 128).any()
    ]
    assert len(ink_rows) > 250 and np.ptp(ink_rows) <= 1.0
    assert crop.shape[0] < 50  # the 100 rows the slanted line spanned, now about its own 30


@pytest.mark.parametrize(
    ("unit", "dpi", "scale"),
    [("mm10", 300, 254 / 300), ("inch1200", 300, 1200 / 300), ("mm10", None, 254 / 300)],
)
def test_alto_units_become_pixels_by_the_image_resolution_or_the_page_size(
    unit: str, dpi: int | None, scale: float, tmp_path: Path
) -> None:
    """mm10 is a tenth of a millimetre, inch1200 1/1200 inch: at 300 dpi a line 300 pixels
    from the left is 254 mm10 or 1200 inch1200 in. An image that records no resolution is scaled
    by the page's size in those units against its pixels."""
    lines = lines_of(["scaled line"])
    page_image(tmp_path / "p.png", (400, 100), lines, **({"dpi": (dpi, dpi)} if dpi else {}))
    xml = alto_xml(4, "p.png", lines, unit=unit, scale=scale)
    if dpi is None:
        xml = xml.replace(
            'PHYSICAL_IMG_NR="1"',
            f'PHYSICAL_IMG_NR="1" WIDTH="{400 * scale:g}" HEIGHT="{100 * scale:g}"',
        )
    (tmp_path / "a.xml").write_text(xml)
    (line,) = read_document(tmp_path / "a.xml").lines
    assert line.box == pytest.approx((10, 20, 310, 50), abs=0.01)
    assert line.polygon is not None
    assert np.array(line.polygon) == pytest.approx(
        np.array([(10, 20), (310, 20), (310, 50), (10, 50)]), abs=0.01
    )
    assert np.array(line.baseline) == pytest.approx(np.array([(10, 45), (310, 45)]), abs=0.01)


def test_line_folders_pair_images_with_their_transcriptions(tmp_path: Path) -> None:
    images = write_line_folder(tmp_path / "lines", {"a": "erste Zeile", "b": "zweite ſ"})
    Image.new("L", (50, 20), 255).save(tmp_path / "lines" / "page.png")  # no .gt.txt: not a line
    found = find_documents([str(tmp_path / "lines")])
    assert found == images
    documents = [read_document(p) for p in found]
    assert [(d.format, d.lines[0].text, d.lines[0].box) for d in documents] == [
        ("line folder", "erste Zeile", (0, 0, 200, 40)),
        ("line folder", "zweite ſ", (0, 0, 200, 40)),
    ]
    (tmp_path / "lines" / "b.gt.txt").write_text("two\nlines\n")
    with pytest.raises(DocumentError, match=r"b\.gt\.txt: holds 2 lines of text"):
        read_document(images[1])


def test_sources_mix_folders_files_and_globs_each_document_once(tmp_path: Path) -> None:
    page = write_page(tmp_path / "pages", "p1", lines_of(["a"]))
    alto = write_alto(tmp_path / "pages", "p2", lines_of(["b"]))
    lines = write_line_folder(tmp_path / "lines", {"l1": "c"})
    found = find_documents([str(tmp_path / "pages"), str(tmp_path / "lines" / "*.png"), str(page)])
    assert found == [page, alto, *lines]
    with pytest.raises(Exception, match=r"nothing\* names no PAGE, ALTO or \.gt\.txt lines"):
        find_documents([str(tmp_path / "nothing*")])


def test_coordinates_are_clipped_and_unusable_lines_skipped_with_their_reason(
    tmp_path: Path,
) -> None:
    lines = lines_of(["inside", "clipped", "outside", "flat"])
    lines[1].box = (-20, 70, 600, 100)  # runs off both sides of the 400-pixel page
    lines[2].box = (500, 120, 600, 150)
    lines[3].box = (10, 170, 300, 171)
    document = read_document(write_page(tmp_path, "page", lines))
    assert [line.id for line in document.lines] == ["l0", "l1"]
    assert document.lines[1].box == (0, 70, 400, 100)
    assert [(s.line_id, s.reason) for s in document.skipped] == [
        ("l2", "outside the image"),
        ("l3", "degenerate (thinner than 2 pixels)"),
    ]


ENTITY_BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda x: x.replace("imageFilename='page.png'", "imageFilename='gone.png'"),
            r"page\.xml: its image .*gone\.png: no such file",
        ),
        (
            lambda x: x.replace("imageFilename='page.png'", "imageFilename='page.xml'"),
            r"page\.xml: its image .*page\.xml: not an image",
        ),
        (
            lambda x: x.replace(page_ns("2019-07-15"), "http://example.org/not-page"),
            r"page\.xml: unknown document: root 'PcGts' in namespace 'http://example.org/not-page'",
        ),
        (
            lambda x: x.replace("<PcGts ", "<Page2 ").replace("</PcGts>", "</Page2>"),
            r"page\.xml: PAGE root element is 'Page2', not 'PcGts'",
        ),
        (
            lambda x: x.replace('points="10,70 310,70', 'points="10,70 3l0,70'),
            r"page\.xml: line l1: Coords points '10,70 3l0,70 .*' are not numbers",
        ),
        (
            lambda x: x.replace('points="10,20 310,20', 'points="10,20 nan,20'),
            r"page\.xml: line l0: Coords points .* are not numbers",
        ),
        (
            lambda x: (
                ENTITY_BOMB + x.split("\n", 1)[1].replace("tests</Creator>", "&lol2;</Creator>")
            ),
            r"page\.xml: refused: it declares the entity 'lol'",
        ),
        (lambda x: x[: len(x) // 2], r"page\.xml: not well-formed XML"),
    ],
    ids=[
        "missing image",
        "unreadable image",
        "unknown namespace",
        "unknown root",
        "coordinates not numbers",
        "coordinates not finite",
        "entity expansion",
        "truncated",
    ],
)
def test_bad_documents_fail_in_one_line_naming_the_file_and_line(
    change: object, message: str, tmp_path: Path
) -> None:
    path = write_page(tmp_path, "page", lines_of(["a", "b"]))
    assert callable(change)
    path.write_text(change(path.read_text()))
    with pytest.raises(DocumentError, match=message) as error:
        read_document(path)
    assert "\n" not in str(error.value)


def test_an_alto_unit_without_a_resolution_to_convert_it_is_refused(tmp_path: Path) -> None:
    lines = lines_of(["x"])
    page_image(tmp_path / "p.png", (400, 100), lines)
    (tmp_path / "a.xml").write_text(alto_xml(2, "p.png", lines, unit="mm10", scale=0.85))
    with pytest.raises(DocumentError, match=r"a\.xml: MeasurementUnit mm10 needs the image's"):
        read_document(tmp_path / "a.xml")
    xml = alto_xml(4, "p.png", lines).replace("<MeasurementUnit>pixel<", "<MeasurementUnit>pt<")
    (tmp_path / "b.xml").write_text(xml)
    with pytest.raises(DocumentError, match=r"b\.xml: unknown MeasurementUnit 'pt'"):
        read_document(tmp_path / "b.xml")


def test_readings_go_back_into_any_prefix_and_quoting_unchanged(tmp_path: Path) -> None:
    """A prefixed namespace (pc:) and single-quoted attributes: new elements take the prefix,
    the rest of the file stays as written."""
    lines = lines_of(["old"])
    page_image(tmp_path / "p.png", (400, 100), lines)
    xml = (
        page_xml("2013-07-15", "p.png", lines, (400, 100))
        .replace(f'xmlns="{page_ns("2013-07-15")}"', f"xmlns:pc='{page_ns('2013-07-15')}'")
        .replace("<", "<pc:")
        .replace("<pc:/", "</pc:")
        .replace("<pc:?", "<?")
        .replace("<pc:TextEquiv><pc:Unicode>old</pc:Unicode></pc:TextEquiv>", "")
    )
    (tmp_path / "p.xml").write_text(xml)
    written = write_readings(tmp_path / "p.xml", {"l0": Reading("neu", 0.5, (0.5,))}).decode()
    assert written == xml.replace(
        '<pc:Baseline points="10,45 310,45"/>',
        '<pc:Baseline points="10,45 310,45"/>\n'
        '        <pc:TextEquiv conf="0.500"><pc:Unicode>neu</pc:Unicode></pc:TextEquiv>',
    )
    assert alto_ns(4) not in written


def test_empty_text_elements_and_a_latin_1_file_take_their_readings(tmp_path: Path) -> None:
    lines = lines_of(["x", "y"])
    page_image(tmp_path / "p.png", (400, 120), lines)
    xml = (
        page_xml("2019-07-15", "p.png", lines, (400, 120))
        .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
        .replace("<TextEquiv><Unicode>x</Unicode></TextEquiv>", "<TextEquiv/>")
        .replace("<Unicode>y</Unicode>", "<PlainText>y</PlainText><Unicode/>")
    )
    (tmp_path / "p.xml").write_bytes(xml.encode("latin-1"))
    readings = {"l0": Reading("ſchön", 0.5, (0.5,)), "l1": Reading("é", 0.25, (0.25,))}
    written = write_readings(tmp_path / "p.xml", readings).decode("latin-1")
    assert written == xml.replace(
        "<TextEquiv/>", '<TextEquiv conf="0.500"><Unicode>&#383;chön</Unicode></TextEquiv>'
    ).replace(
        "<TextEquiv><PlainText>y</PlainText><Unicode/>",
        '<TextEquiv conf="0.250"><PlainText>y</PlainText><Unicode>é</Unicode>',
    )
