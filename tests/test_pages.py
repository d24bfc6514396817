"""Page images: composed pages whose lines' true positions are known, the segmenter's pieces
joined into lines, the PAGE and ALTO files written for them (valid against their schemas, and
read back by our own readers), paragraph readings cut to the lines found, and `predict
page.png --out DIR` end to end with kraken's own model (slow)."""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from text_recognizer import cli
from text_recognizer.data.documents import Document, Line, Reading, alto, page_xml, read_document
from text_recognizer.data.documents import segment as segmenter
from text_recognizer.data.documents.record import page_text
from text_recognizer.data.pages.assembly import LinePool
from text_recognizer.data.pages.compose import (
    ComposedPage,
    blank_page,
    compose_page,
    match_lines,
    polygon_iou,
)
from text_recognizer.data.synthetic.fonts import load_fonts
from text_recognizer.data.synthetic.render import Augmentation, render_line
from text_recognizer.inference.pages import region_readings

predict = functools.partial(run_cli, main=cli.main)
SCHEMAS = Path(__file__).parent / "schemas"
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven",
         "wise", "owls", "watch", "it")  # fmt: skip


def rendered_pool(
    count: int = 24, height: int = 56, width: int = 640, words: tuple[int, int] = (3, 6)
) -> LinePool:
    """Lines of a few words in three packaged fonts (a font a group: a region is one hand)."""
    fonts = load_fonts(["kalam", "caveat", "indie-flower"])
    rng = np.random.default_rng(0)
    crops, texts, groups = [], [], []
    while len(crops) < count:
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(*words))))
        group = len(crops) % len(fonts)
        line = render_line(text, fonts[group], rng, height, width, Augmentation(strength=0))
        if line is not None:
            crops.append(line)
            texts.append(text)
            groups.append(group)
    return LinePool(crops, texts, groups)


@pytest.fixture(scope="module")
def pool() -> LinePool:
    return rendered_pool()


def test_composed_lines_hold_their_ink(pool: LinePool) -> None:
    page = compose_page(pool, np.random.default_rng(1), regions=3, columns=2)
    assert len(page.regions) == 3 and len(page.lines) >= 3
    ink = page.pixels < 128
    inside = np.zeros_like(ink)
    for line in page.lines:
        (x0, y0), _, (x1, y1), _ = line.polygon
        assert ink[round(y0) : round(y1), round(x0) : round(x1)].any(), line.text
        inside[round(y0) : round(y1), round(x0) : round(x1)] = True
    assert not (ink & ~inside).any()  # no ink outside the true boxes
    assert page.text.count("\n\n") == 2  # a blank line between three regions


def test_a_turned_page_turns_its_outlines(pool: LinePool) -> None:
    rng = np.random.default_rng(2)
    flat = compose_page(pool, rng, regions=1)
    turned = compose_page(pool, np.random.default_rng(2), regions=1, angle=5.0)
    assert [t.text for t in turned.lines] == [t.text for t in flat.lines]
    first = np.array(turned.lines[0].polygon)
    assert first[1][1] < first[0][1] - 10  # counter-clockwise: the right end has risen
    ys = np.nonzero(turned.pixels < 128)[0]
    box = np.array(turned.lines[-1].polygon)
    assert box[:, 1].max() >= ys.max() - 3  # the lowest ink is inside the last line's outline


def test_iou_and_matching() -> None:
    square = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
    half = [(5.0, 0.0), (15.0, 0.0), (15.0, 10.0), (5.0, 10.0)]
    far = [(50.0, 50.0), (60.0, 50.0), (60.0, 60.0), (50.0, 60.0)]
    assert polygon_iou(square, square) == pytest.approx(1.0)
    assert polygon_iou(square, half) == pytest.approx(66 / 176, abs=0.02)  # whole pixels
    assert polygon_iou(square, far) == 0.0
    assert match_lines([far, square], [square, half, far]) == [(0, 2), (1, 0)]


def _kraken_line(baseline: list[tuple[int, int]], top: int, bottom: int, region: str) -> object:
    x0, x1 = baseline[0][0], baseline[-1][0]
    boundary = [(x0, top), (x1, top), (x1, bottom), (x0, bottom)]
    return SimpleNamespace(baseline=baseline, boundary=boundary, regions=[region])


def test_pieces_of_one_line_are_joined() -> None:
    """Split at a wide gap between words: joined along the baseline, in order; the next line,
    a line across the gutter and another region's line stay apart."""
    lines = [
        _kraken_line([(10, 100), (200, 102)], 70, 110, "a"),
        _kraken_line([(10, 160), (300, 160)], 130, 170, "a"),  # the next line down
        _kraken_line([(260, 101), (400, 99)], 72, 108, "a"),  # the rest of the first line
        _kraken_line([(700, 100), (900, 100)], 70, 110, "a"),  # across a gutter
        _kraken_line([(420, 100), (600, 100)], 70, 110, "b"),  # another region
    ]
    pieces = [segmenter._piece(line) for line in lines]
    joined = segmenter._joined(pieces, height=30.0)
    assert [p.baseline[0][0] for p in joined] == [10, 10, 700, 420]
    assert joined[0].baseline == [(10, 100), (200, 102), (260, 101), (400, 99)]


def found_document(tmp_path: Path) -> tuple[Document, dict[str, Reading]]:
    image = tmp_path / "page.png"
    Image.fromarray(np.full((300, 400), 230, dtype=np.uint8)).save(image)
    lines = (
        Line("l0", (10, 10, 200, 50), ((10, 10), (200, 12), (200, 50), (10, 48)),
             ((10, 40), (200, 42)), None, 0, "_k1"),
        Line("l1", (10, 60, 150, 100), None, ((10, 90), (150, 90)), None, 1, "_k1"),
        Line("l2", (220, 10, 390, 50), ((220, 10), (390, 10), (390, 50), (220, 50)),
             None, None, 2, None),
    )  # fmt: skip
    readings = {
        "l0": Reading("Dear Sir & <Madam>", 0.91, (0.9, 0.95, 0.88)),
        "l1": Reading("", 0.5, ()),
        "l2": Reading('"quoted" text', 0.7, (0.6, 0.8)),
    }
    return Document(image, image, segmenter.FORMAT, lines, ()), readings


@pytest.mark.parametrize(("create", "schema"), [
    (page_xml.create, "pagecontent-2019-07-15.xsd"),
    (alto.create, "alto-4-2.xsd"),
])  # fmt: skip
def test_written_files_are_valid_and_read_back(tmp_path: Path, create: object, schema: str) -> None:
    etree = pytest.importorskip("lxml.etree")
    document, readings = found_document(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    data = create(document, readings, "../page.png", (400, 300))  # type: ignore[operator]
    validator = etree.XMLSchema(etree.parse(str(SCHEMAS / schema)))
    parsed = etree.fromstring(data)
    assert validator.validate(parsed), validator.error_log
    written = out / "page.xml"
    written.write_bytes(data)
    back = read_document(written)
    assert back.image.resolve() == document.image.resolve()
    assert [line.id for line in back.lines] == ["l0", "l1", "l2"]
    assert [line.text for line in back.lines] == ["Dear Sir & <Madam>", "", '"quoted" text']
    assert back.lines[0].polygon == document.lines[0].polygon
    assert back.lines[0].baseline == document.lines[0].baseline
    if create is page_xml.create:
        assert [line.region for line in back.lines] == ["r0", "r0", "r1"]


def test_a_page_with_no_lines_is_still_valid(tmp_path: Path) -> None:
    etree = pytest.importorskip("lxml.etree")
    document, _ = found_document(tmp_path)
    empty = Document(document.path, document.image, document.format, (), ())
    for create, schema in ((page_xml.create, "pagecontent-2019-07-15.xsd"),
                           (alto.create, "alto-4-2.xsd")):  # fmt: skip
        validator = etree.XMLSchema(etree.parse(str(SCHEMAS / schema)))
        assert validator.validate(etree.fromstring(create(empty, {}, "p.png", (40, 30))))


def test_a_paragraph_reading_stops_rather_than_invents() -> None:
    """Cut to the lines the segmenter found, a repeated line dropped, missing lines empty."""
    lines = [[Line(f"l{i}", (0, 0, 10, 10), None, None, None, i) for i in range(3)],
             [Line("m0", (0, 0, 10, 10), None, None, None, 3)]]  # fmt: skip
    read = [
        Reading("one\ntwo\ntwo\nthree\ninvented", 0.8, ()),
        Reading("", 0.1, ()),
    ]
    readings = region_readings(lines, read)
    assert [readings[f"l{i}"].text for i in range(3)] == ["one", "two", "three"]
    assert readings["m0"].text == ""
    assert page_text([["one", "two"], ["three"]]) == "one\ntwo\n\nthree"


def test_without_the_segmenter_one_line_says_how_to_install(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tiny_checkpoint: object,
) -> None:
    real = segmenter.importlib.util.find_spec
    monkeypatch.setattr(
        segmenter.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "kraken" else real(name, *a),
    )
    image = tmp_path / "page.png"
    Image.fromarray(np.full((100, 100), 230, dtype=np.uint8)).save(image)
    checkpoint = str(tiny_checkpoint.checkpoint)  # type: ignore[attr-defined]
    code, _, err = predict(capsys, "predict", "--checkpoint", checkpoint, str(image),
                             "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 1
    assert err.strip().splitlines() == [
        "error: reading a page image needs kraken's line segmenter: "
        "pip install 'text-recognizer[pages]'"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_regions_need_a_paragraph_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_checkpoint: object
) -> None:
    image = tmp_path / "page.png"
    Image.fromarray(np.full((100, 100), 230, dtype=np.uint8)).save(image)
    checkpoint = str(tiny_checkpoint.checkpoint)  # type: ignore[attr-defined]
    code, _, err = predict(capsys, "predict", "--checkpoint", checkpoint, str(image),
                           "--segment", "regions", "--out", str(tmp_path))  # fmt: skip
    assert code == 1
    assert "--segment regions: reads each region whole, which needs a paragraph" in err


def check_found(page: ComposedPage, found: tuple[Line, ...]) -> None:
    """Every line found (one found line over it at IoU >= 0.5), nothing else, in order."""
    matched = match_lines([line.outline for line in found], [t.polygon for t in page.lines])
    assert len(matched) == len(page.lines) == len(found), (len(matched), len(found))
    assert [j for _, j in matched] == list(range(len(page.lines)))


@pytest.mark.slow
def test_kraken_finds_every_line_in_order(pool: LinePool) -> None:
    """Several regions; two columns; a page turned 3 degrees; a blank page; one long line."""
    pytest.importorskip("kraken")
    pages = {
        "regions": compose_page(pool, np.random.default_rng(3), regions=3),
        "columns": compose_page(pool, np.random.default_rng(4), regions=4, columns=2),
        "turned": compose_page(pool, np.random.default_rng(9), regions=2, angle=3.0),
    }
    long_pool = rendered_pool(count=1, width=1280, words=(16, 17))
    pages["long line"] = compose_page(long_pool, np.random.default_rng(6), 1, lines_per_region=(1,))
    assert long_pool.crops[0].shape[1] > 900
    for name, page in pages.items():
        found = segmenter.found_lines(Image.fromarray(page.pixels))
        check_found(page, found)
        assert {line.region for line in found} != {None}, name
    assert segmenter.found_lines(Image.fromarray(blank_page().pixels)) == ()


@pytest.mark.slow
def test_predict_a_page_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_checkpoint: object, pool: LinePool
) -> None:
    """`predict page.png --out DIR`: the text, PAGE (or ALTO) and the overlay, a bad image named
    in one line while the others are written, and a blank page written empty. (kraken takes the
    page's two paragraphs as one region, so the text has no blank line to check.)"""
    pytest.importorskip("kraken")
    page = compose_page(pool, np.random.default_rng(8), regions=2)
    Image.fromarray(page.pixels).save(tmp_path / "page.png")
    Image.fromarray(blank_page((300, 400)).pixels).save(tmp_path / "blank.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    checkpoint = str(tiny_checkpoint.checkpoint)  # type: ignore[attr-defined]
    out = tmp_path / "out"
    images = [str(tmp_path / name) for name in ("page.png", "bad.png", "blank.png")]
    code, stdout, err = predict(
        capsys, "predict", "--checkpoint", checkpoint, *images, "--out", str(out), "--overlay"
    )
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("error")] == [
        f"error: {tmp_path / 'bad.png'}: not an image (unrecognised format)"
    ]
    assert f"{len(page.lines)} lines in " in stdout
    text = (out / "page.txt").read_text()
    back = read_document(out / "page.xml")
    assert [line.text for line in back.lines] == [t for t in text.splitlines() if t]
    assert len(back.lines) == len(page.lines)
    assert Image.open(out / "page.overlay.png").size == page.pixels.shape[::-1]
    assert (out / "blank.txt").read_text() == "\n"
    assert not (out / "bad.txt").exists()
    code, _, _ = predict(capsys, "predict", "--checkpoint", checkpoint, images[0], "--out",
                         str(tmp_path / "alto"), "--format", "alto")  # fmt: skip
    assert code == 0
    assert read_document(tmp_path / "alto" / "page.xml").format == "ALTO v4"
