"""`POST /v1/page` over real HTTP, without kraken: the segmenter is replaced by a page's known
lines (the tiny model's rendered lines pasted on a page), so what is tested is the rest: each
line cut, read through the batcher with the others, the page's text, its lines' outlines and
the overlay, and every refusal as JSON."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from test_serve import batch_sizes, client_of, png
from tiny_recognizer import TEXTS, Tiny

from text_recognizer.data.documents.record import Line
from text_recognizer.data.documents.segment import INSTALL, SegmenterMissingError
from text_recognizer.serve import pages
from text_recognizer.serve.model import Model, load_model

PAGE_SIZE = (700, 240)  # width, height
PLACES = [(20, 20, "r0"), (40, 64, "r0"), (30, 150, "r1")]
"""Where each of the first tiny lines is pasted (left, top) and its region."""


def post_page(client: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return client.post("/v1/page", files={"image": ("page.png", data)}, data=fields)


@pytest.fixture
def model(tiny_checkpoint: Tiny) -> Model:
    """Read with the attention decoder, as tests/test_serve.py reads."""
    return load_model(tiny_checkpoint.checkpoint, decoder="joint")


@pytest.fixture
def page(tiny_checkpoint: Tiny) -> np.ndarray:
    """A page holding the first tiny lines, on paper of their own grey."""
    pixels = np.full(PAGE_SIZE[::-1], int(np.median(tiny_checkpoint.images[0])), np.uint8)
    for image, (left, top, _) in zip(tiny_checkpoint.images, PLACES, strict=False):
        pixels[top : top + image.shape[0], left : left + image.shape[1]] = image
    return pixels


def known_lines() -> tuple[Line, ...]:
    """Each pasted line as the segmenter would give it: boxes that the cutter's pad (4 pixels
    on a box 24 high) widens to exactly the pasted image, so each line reads as it does alone;
    the first with a level baseline, which leaves the cut as it is."""
    lines = []
    for order, (left, top, region) in enumerate(PLACES):
        box = (left + 4.0, top + 4.0, left + 636.0, top + 28.0)
        baseline = ((box[0], top + 24.0), (box[2], top + 24.0)) if order == 0 else None
        lines.append(Line(f"l{order}", box, None, baseline, None, order, region))
    return tuple(lines)


@pytest.fixture
def segmenter(monkeypatch: pytest.MonkeyPatch) -> list[Image.Image]:
    """No kraken: `found_lines` gives the known lines; returns the images it was given."""
    given: list[Image.Image] = []

    def found_lines(image: Image.Image) -> tuple[Line, ...]:
        given.append(image)
        return known_lines()

    monkeypatch.setattr(pages, "require_segmenter", lambda: None)
    monkeypatch.setattr(pages, "found_lines", found_lines)
    return given


def decoded(data_url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data_url.removeprefix("data:image/png;base64,"))))


def test_a_page_is_read_line_by_line_in_one_batch(
    model: Model, page: np.ndarray, segmenter: list[Image.Image]
) -> None:
    with client_of(model) as client:
        answer = post_page(client, png(page), overlay="true").json()
        batches, images = batch_sizes(client)
        plain = client.post("/v1/page", json={"image": base64.b64encode(png(page)).decode()})
    assert segmenter[0].mode == "L" and segmenter[0].size == PAGE_SIZE
    assert answer["text"] == f"{TEXTS[0]}\n{TEXTS[1]}\n\n{TEXTS[2]}"
    assert [line["text"] for line in answer["lines"]] == TEXTS[:3]
    assert [line["id"] for line in answer["lines"]] == ["l0", "l1", "l2"]
    assert [line["region"] for line in answer["lines"]] == ["r0", "r0", "r1"]
    first, second = answer["lines"][:2]
    assert first["polygon"] == [[24, 24], [656, 24], [656, 48], [24, 48]]  # the box's corners
    assert first["baseline"] == [[24, 44], [656, 44]] and second["baseline"] is None
    assert (batches, images) == (1, 3)
    assert answer["model"]["kind"] == "line" and 0 < answer["seconds"] < 30
    overlay = decoded(answer["overlay"])
    assert overlay.format == "PNG" and overlay.mode == "RGB" and overlay.size == PAGE_SIZE
    assert plain.json()["text"] == answer["text"] and "overlay" not in plain.json()


def test_a_page_without_lines_reads_as_empty(
    model: Model, page: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "require_segmenter", lambda: None)
    monkeypatch.setattr(pages, "found_lines", lambda image: ())
    with client_of(model) as client:
        answer = post_page(client, png(page), overlay="1")
    assert answer.status_code == 200
    assert answer.json()["text"] == "" and answer.json()["lines"] == []
    assert decoded(answer.json()["overlay"]).size == PAGE_SIZE


def test_a_page_is_refused_in_one_line_for_what_it_cannot_be_read_with(
    model: Model, page: np.ndarray, segmenter: list[Image.Image]
) -> None:
    good, bad = png(page), b"plain text, not a PNG"
    bearer = {"Authorization": "Bearer s3cret"}
    cases: list[tuple[int, dict[str, str], bytes, dict[str, str], str]] = [
        (401, {}, good, {}, "missing or wrong bearer token"),
        (415, bearer, bad, {}, "image: not an image"),
        (422, bearer, good, {"beam": "17"}, "choose a width from 1"),
        (422, bearer, good, {"overlay": "maybe"}, "overlay must be true or false"),
        (422, bearer, good, {"stem": "true"}, "unknown field(s) stem"),
    ]
    with client_of(model, token="s3cret") as client:
        for status, headers, data, fields, message in cases:
            response = client.post(
                "/v1/page", files={"image": ("p.png", data)}, data=fields, headers=headers
            )
            assert response.status_code == status, response.text
            assert message in response.json()["error"]
    assert not segmenter  # none of them was segmented


def test_a_page_whose_lines_do_not_fit_in_the_queue_is_refused_whole(
    model: Model, page: np.ndarray, segmenter: list[Image.Image]
) -> None:
    with client_of(model, max_queue=2) as client:
        response = post_page(client, png(page))
        assert client.get("/healthz").json()["queue_depth"] == 0
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json() == {
        "error": "0 requests are already waiting; 3 more would pass the limit of 2"
    }


def test_without_kraken_a_page_is_501_saying_how_to_install_it(
    model: Model, page: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise SegmenterMissingError(
            f"reading a page image needs kraken's line segmenter: {INSTALL}"
        )

    monkeypatch.setattr(pages, "require_segmenter", missing)
    with client_of(model) as client:
        response = post_page(client, png(page))
        line = client.post("/v1/recognize", files={"image": ("l.png", png(page[20:52, 20:660]))})
    assert response.status_code == 501
    assert response.json() == {
        "error": f"reading a page image needs kraken's line segmenter: {INSTALL}"
    }
    assert line.json()["text"] == TEXTS[0]  # lines are still read


def test_a_paragraph_model_does_not_read_found_lines(
    tiny_checkpoint: Tiny, page: np.ndarray, segmenter: list[Image.Image]
) -> None:
    """The tiny reader with a paragraph reader's stem (it only shrinks): what the server judges
    a model by."""
    paragraphs = load_model(tiny_checkpoint.checkpoint, decoder="joint")
    paragraphs.recognizer.transform.stem.resize = "shrink"
    assert paragraphs.kind == "page"
    with client_of(paragraphs) as client:
        response = post_page(client, png(page))
    assert response.status_code == 422
    assert "send the page to /v1/recognize, or serve a line model" in response.json()["error"]
    assert not segmenter


class SlowSegmenter:
    """Finds no lines, and takes until it is let go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.done = threading.Event()

    def __call__(self, image: Image.Image) -> tuple[Line, ...]:
        self.started.set()
        assert self.done.wait(30)
        return ()


@pytest.fixture
def slow_segmenter(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowSegmenter]:
    slow = SlowSegmenter()
    monkeypatch.setattr(pages, "require_segmenter", lambda: None)
    monkeypatch.setattr(pages, "found_lines", slow)
    yield slow
    slow.done.set()


def test_a_slow_page_runs_out_of_time_while_the_server_goes_on(
    model: Model, tiny_checkpoint: Tiny, page: np.ndarray, slow_segmenter: SlowSegmenter
) -> None:
    """Segmenting happens off the event loop: lines are read meanwhile, and the page is
    answered 503 when its time is up, not when the segmenter is done."""
    line = png(tiny_checkpoint.images[1])
    with client_of(model, timeout_s=1.0) as client:
        answers: list[httpx.Response] = []
        waiting = threading.Thread(target=lambda: answers.append(post_page(client, png(page))))
        began = time.perf_counter()
        waiting.start()
        assert slow_segmenter.started.wait(10)
        read = client.post("/v1/recognize", files={"image": ("l.png", line)})
        assert read.json()["text"] == TEXTS[1]
        waiting.join()  # answered while the segmenter still runs
        assert time.perf_counter() - began < 10
        assert answers[0].status_code == 503
        assert answers[0].json() == {"error": "no answer within 1 s"}
        slow_segmenter.done.set()
        assert client.get("/healthz").json()["status"] == "ok"
