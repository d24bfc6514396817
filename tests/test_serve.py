"""The HTTP API, over real HTTP on a loopback port, with a tiny model overfit on rendered lines:
the text `predict` reads, every error status as JSON with one log line, batching seen in
/metrics, the token, CORS and the limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helpers
import httpx
import numpy as np
import pytest
from PIL import Image
from serving import running
from test_predict import png_header, save_pngs
from tiny_recognizer import TEXTS, Tiny, render

from text_recognizer import cli
from text_recognizer.data.lm_corpus import default_lm
from text_recognizer.lm import train, write_arpa
from text_recognizer.serve.app import create_app
from text_recognizer.serve.model import Model, load_model
from text_recognizer.serve.settings import Settings

run_cli = functools.partial(helpers.run_cli, main=cli.main)
LOGGER = "text_recognizer.serve"


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def post_image(client: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return client.post("/v1/recognize", files={"image": ("line.png", data)}, data=fields)


@pytest.fixture
def model(tiny_checkpoint: Tiny) -> Model:
    """Read with the attention decoder, as `predict` reads by default."""
    return load_model(tiny_checkpoint.checkpoint, decoder="joint")


@contextlib.contextmanager
def client_of(model: Model, **settings: Any) -> Iterator[httpx.Client]:
    with (
        running(create_app(model, Settings(**settings))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def batch_sizes(client: httpx.Client) -> tuple[float, float]:
    """(batches, images) decoded so far, as /metrics reports them."""
    found = {}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("text_recognizer_batch_size_count", "text_recognizer_batch_size_sum"):
            found[name] = float(value)
    return found["text_recognizer_batch_size_count"], found["text_recognizer_batch_size_sum"]


def test_the_api_reads_what_predict_reads(
    model: Model, tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each image alone, by multipart and by JSON; `predict --batch-size 1` reads each alone
    too, since a line's text may depend on the padding of the batch it is read in."""
    images = tiny_checkpoint.images + render(["Brown dog", "tiny 9"], family="caveat")
    paths = save_pngs(tmp_path, images)
    code, out, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        str(tiny_checkpoint.checkpoint),
        "--batch-size",
        "1",
        *map(str, paths),
    )
    assert code == 0, err
    expected = [line.split("\t")[1] for line in out.splitlines()]
    assert expected[: len(TEXTS)] == TEXTS
    code, out, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        str(tiny_checkpoint.checkpoint),
        "--batch-size",
        "1",
        "--beam",
        "3",
        *map(str, paths),
    )
    assert code == 0, err
    by_beam = [line.split("\t")[1] for line in out.splitlines()]

    with client_of(model) as client:
        described = client.get("/v1/model").json()
        for path, text, beam in zip(paths, expected, by_beam, strict=True):
            answer = post_image(client, path.read_bytes()).json()
            assert answer["text"] == text and answer["lines"] == [text]
            assert post_image(client, path.read_bytes(), beam="3").json()["text"] == beam
            assert 0 < answer["seconds"] < 30
            assert answer["model"] == {"kind": "line", "sha256": described["sha256"]}
            assert "stem" not in answer
            encoded = base64.encodebytes(path.read_bytes()).decode()  # with line breaks
            as_json = client.post("/v1/recognize", json={"image": encoded}).json()
            assert as_json["text"] == text
        data_url = client.post(
            "/v1/recognize",
            json={"image": "data:image/png;base64," + encoded, "stem": True, "beam": 1},
        ).json()
    assert data_url["text"] == expected[-1]
    stem = data_url["stem"].removeprefix("data:image/png;base64,")
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(stem))))
    assert np.array_equal(seen, model.recognizer.fit(images[-1]))

    assert described["kind"] == "line"
    assert described["charset"] == model.recognizer.tokenizer.charset
    assert described["input"]["height"] == 32 and described["input"]["resize"] == "height"
    assert described["trained_on"]["_target_"].endswith("SyntheticLines")
    assert described["source"] == str(tiny_checkpoint.checkpoint)
    assert described["limits"]["max_batch"] == Settings().max_batch


def test_every_error_is_json_with_its_status_and_one_log_line(
    model: Model, tiny_checkpoint: Tiny, caplog: pytest.LogCaptureFixture
) -> None:
    good = png(tiny_checkpoint.images[0])
    noise = png(np.random.default_rng(0).integers(0, 255, (64, 256), np.uint8))
    limit = 64 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield from [b"{" + b" " * 16_384] * 8

    with (
        tempfile_png(2000, 2000) as bomb,
        client_of(model, max_upload_bytes=limit, max_pixels=100_000) as client,
    ):
        multipart = {"files": {"image": ("line.png", good)}}
        cases: list[tuple[int, dict[str, Any], str]] = [
            (400, {"content": b"{not json", "headers": JSON}, "not JSON"),
            (400, {"json": {"picture": "x"}}, "base64 string 'image'"),
            (400, {"json": {"image": "not base64!"}}, "not valid base64"),
            (400, {"files": {"other": ("x.png", good)}}, "no file field 'image'"),
            (400, {"content": good, "headers": NO_BOUNDARY}, "Missing boundary"),
            (413, {"files": {"image": ("big.png", b"\0" * (limit + 1))}}, "at most 65,536"),
            (413, {"content": chunks(), "headers": JSON}, "more than 65,536 bytes"),
            (413, {"files": {"image": ("bomb.png", bomb)}}, "2000 x 2000 pixels"),
            (415, {"files": {"image": ("notes.png", b"plain text, not a PNG")}}, "not an image"),
            (415, {"content": good, "headers": {"content-type": "image/png"}}, "content type"),
            (422, {"files": {"image": ("cut.png", noise[: len(noise) // 2])}}, "truncated"),
            (422, {"files": {"image": ("empty.png", b"")}}, "empty file"),
            (422, {**multipart, "data": {"beam": "17"}}, "choose a width from 1"),
            (422, {**multipart, "data": {"beam": "wide"}}, "beam must be an integer"),
            (422, {**multipart, "data": {"kind": "page"}}, "reads lines, not pages"),
            (422, {**multipart, "data": {"stem": "maybe"}}, "stem must be true or false"),
            (422, {"json": {"image": "", "language": "en"}}, "unknown field(s) language"),
        ]
        for status, request, message in cases:
            caplog.clear()
            with caplog.at_level(logging.WARNING, LOGGER):
                response = client.post("/v1/recognize", **request)
            assert response.status_code == status, (request, response.text)
            assert message in response.json()["error"], response.text
            lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
            assert lines == [f"POST /v1/recognize {status}: {response.json()['error']}"]
        assert client.get("/nowhere").json() == {"error": "Not Found"}
        # After all that, the server still reads.
        assert post_image(client, good).json()["text"] == TEXTS[0]
        assert client.get("/healthz").json()["status"] == "ok"
        counts = client.get("/metrics").text
    assert 'text_recognizer_requests_total{path="/v1/recognize",status="413"} 3.0' in counts
    assert 'text_recognizer_requests_total{path="/v1/recognize",status="200"} 1.0' in counts
    assert 'text_recognizer_requests_total{path="other",status="404"} 1.0' in counts
    assert 'text_recognizer_request_seconds_bucket{le="+Inf",path="/v1/recognize"' in counts


JSON = {"content-type": "application/json"}
NO_BOUNDARY = {"content-type": "multipart/form-data"}


@contextlib.contextmanager
def tempfile_png(width: int, height: int) -> Iterator[bytes]:
    """A PNG header declaring `width` x `height` pixels and holding none."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        yield png_header(Path(folder) / "header.png", width, height).read_bytes()


class Gate:
    """Holds every batch in the decoder until opened: a server that is busy for as long as a
    test wants."""

    def __init__(self, model: Model) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.decode = model.recognizer.predict_fitted

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.opened.wait(30)
        return self.decode(*args, **kwargs)


def test_a_full_queue_and_a_late_answer_are_503_and_the_server_goes_on(
    model: Model, tiny_checkpoint: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = png(tiny_checkpoint.images[1])
    with client_of(model, max_batch=1, max_queue=1, timeout_s=1.0) as client:
        gate = Gate(model)
        monkeypatch.setattr(model.recognizer, "predict_fitted", gate)
        answers: list[httpx.Response] = []
        first = threading.Thread(target=lambda: answers.append(post_image(client, good)))
        first.start()
        assert gate.entered.wait(10)  # the first request is in the decoder
        second = threading.Thread(target=lambda: answers.append(post_image(client, good)))
        second.start()
        while client.get("/healthz").json()["queue_depth"] < 1:  # the second waits
            time.sleep(0.01)
        busy = post_image(client, good)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json() == {"error": "1 requests are already waiting"}
        first.join()
        second.join()
        assert [a.status_code for a in answers] == [503, 503]
        assert all(a.json()["error"] == "no answer within 1 s" for a in answers)
        gate.opened.set()
        assert post_image(client, good).json()["text"] == TEXTS[1]


async def post_all(url: str, images: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await asyncio.gather(
            *(client.post("/v1/recognize", files={"image": ("l.png", i)}) for i in images)
        )


@pytest.mark.parametrize(("max_batch", "batches"), [(8, 2), (1, len(TEXTS))])
def test_requests_that_wait_together_are_decoded_as_one_batch(
    model: Model,
    tiny_checkpoint: Tiny,
    monkeypatch: pytest.MonkeyPatch,
    max_batch: int,
    batches: int,
) -> None:
    """The first request holds the decoder; the others, sent meanwhile, wait and are then
    decoded together (in one batch, or one by one with batching off), each answered its own."""
    images = [png(image) for image in tiny_checkpoint.images]
    with (
        running(create_app(model, Settings(max_batch=max_batch))) as url,
        httpx.Client(base_url=url) as client,
    ):
        gate = Gate(model)
        monkeypatch.setattr(model.recognizer, "predict_fitted", gate)
        answers: list[httpx.Response] = []
        first = threading.Thread(target=lambda: answers.append(post_image(client, images[0])))
        first.start()
        assert gate.entered.wait(10)

        def send_the_rest() -> None:
            answers.extend(asyncio.run(post_all(url, images[1:])))

        rest = threading.Thread(target=send_the_rest)
        rest.start()
        while client.get("/healthz").json()["queue_depth"] < len(images) - 1:
            time.sleep(0.01)
        gate.opened.set()
        first.join()
        rest.join()
        assert [a.json()["text"] for a in answers] == TEXTS
        assert batch_sizes(client) == (batches, len(TEXTS))


def test_a_lone_request_does_not_wait_for_company(model: Model, tiny_checkpoint: Tiny) -> None:
    """A batch waits only for requests already being read: with a long max wait, one request
    at a time is still answered at once."""
    with client_of(model, max_wait_ms=5000) as client:
        answer = post_image(client, png(tiny_checkpoint.images[3])).json()
    assert answer["text"] == TEXTS[3] and answer["seconds"] < 5


def test_a_token_guards_v1_only(model: Model, tiny_checkpoint: Tiny) -> None:
    good = png(tiny_checkpoint.images[2])
    with client_of(model, token="s3cret") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            for response in (
                client.get("/v1/model", headers=headers),
                client.post("/v1/recognize", files={"image": ("l.png", good)}, headers=headers),
            ):
                assert response.status_code == 401
                assert response.json() == {"error": "missing or wrong bearer token"}
                assert response.headers["www-authenticate"] == "Bearer"
        allowed = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/model", headers=allowed).status_code == 200
        answer = client.post("/v1/recognize", files={"image": ("l.png", good)}, headers=allowed)
        assert answer.json()["text"] == TEXTS[2]
        for open_path in ("/", "/healthz", "/metrics", "/static/app.js"):
            assert client.get(open_path).status_code == 200


def test_cors_is_off_unless_configured_and_the_page_is_served(model: Model) -> None:
    preflight = {
        "Origin": "http://example.org",
        "Access-Control-Request-Method": "POST",
    }
    with client_of(model) as client:
        assert (
            "access-control-allow-origin"
            not in client.options("/v1/recognize", headers=preflight).headers
        )
        page = client.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert '<canvas id="canvas"' in page.text and "/static/app.js" in page.text
    with client_of(model, cors_origins=("http://example.org",)) as client:
        allowed = client.options("/v1/recognize", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "http://example.org"


def test_serve_refuses_a_bad_checkpoint_or_setting_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_checkpoint: Tiny
) -> None:
    missing = tmp_path / "missing.ckpt"
    code, out, err = run_cli(capsys, "serve", "--checkpoint", str(missing))
    assert (code, out, err) == (1, "", f"error: {missing}: no such file\n")
    ckpt = str(tiny_checkpoint.checkpoint)
    code, _, err = run_cli(capsys, "serve", "--checkpoint", ckpt, "--max-batch", "0")
    assert (code, err) == (1, "error: max_batch must be positive, got 0\n")


def test_a_line_model_is_served_with_the_default_lm_as_predict_reads(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where `make generate` built the default language model, a request that names no beam
    reads as `predict` reads by default (beam 5 with the model), and `beam` 1 as greedy."""
    write_arpa(train(["zzzz"] * 20, 3), default_lm())
    paths = save_pngs(tmp_path, tiny_checkpoint.images)
    readings = {}
    for beam in ([], ["--beam", "1"]):
        checkpoint = ["--checkpoint", str(tiny_checkpoint.checkpoint), "--batch-size", "1"]
        code, out, err = run_cli(capsys, "predict", *checkpoint, *beam, *map(str, paths))
        assert code == 0, err
        readings[len(beam)] = [line.split("\t")[1] for line in out.splitlines()]
    assert readings[0] != readings[2] == TEXTS  # the model changes what is read

    model = load_model(tiny_checkpoint.checkpoint, decoder="joint")
    with client_of(model) as client:
        assert client.get("/v1/model").json()["search"] == "beam 5 + LM at weight 0.5"
        for path, fused, greedy in zip(paths, readings[0], readings[2], strict=True):
            assert post_image(client, path.read_bytes()).json()["text"] == fused
            assert post_image(client, path.read_bytes(), beam="1").json()["text"] == greedy
