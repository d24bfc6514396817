"""The web page in a real browser: the system's chromium driven by Playwright, against
`text-recognizer serve` started as a user starts it, on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import free_port
from test_serve import png
from tiny_recognizer import TEXTS, Tiny

from text_recognizer.data.paths import DATA_DIR_ENV

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ENV = "CHROMIUM"
"""A chromium binary to use instead of the one on PATH."""


def chromium() -> str | None:
    return (
        os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Playwright's own browser download cannot work offline: drive the system's chromium."""
    found = chromium()
    if found is None:
        pytest.skip("no chromium: apt-get install chromium (or set $CHROMIUM) to run it")
    return {**browser_type_launch_args, "executable_path": found}


@pytest.fixture
def served(tiny_checkpoint: Tiny, tmp_path: Path, data_root: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "text_recognizer.cli", "serve", "--port", str(port)]
    # The tiny reader's attention decoder reads its lines; its CTC head, the default, not yet.
    command += ["--checkpoint", str(tiny_checkpoint.checkpoint), "--decoder", "joint"]
    env = {**os.environ, DATA_DIR_ENV: str(data_root), "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
        assert server.poll() is None, log.read_text()  # nothing the page sent killed it
    finally:
        server.terminate()
        server.wait(30)


def test_the_page_reads_an_upload_and_a_drawing_and_shows_errors(
    page: Any, served: str, tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    expect = playwright.expect
    page.goto(served)
    expect(page.locator("#model")).to_contain_text("A line model: 32 x 640 input")

    line = {"name": "line.png", "mimeType": "image/png", "buffer": png(tiny_checkpoint.images[0])}
    page.set_input_files("#file", files=[line])
    expect(page.locator("#text")).to_have_text(TEXTS[0])
    expect(page.locator("#time")).to_contain_text("Read from the upload in")
    assert page.locator("#stem").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [
        640,
        32,
    ]
    page.screenshot(path=tmp_path / "upload.png", full_page=True)

    box = page.locator("#canvas").bounding_box()
    left, middle = box["x"] + 40, box["y"] + box["height"] / 2
    page.mouse.move(left, middle)
    page.mouse.down()
    for step in range(1, 40):  # a wavy stroke, as a hand writes a word
        page.mouse.move(left + 12 * step, middle + (20 if step % 2 else -20))
    page.mouse.up()
    page.click("#read-drawing")
    expect(page.locator("#time")).to_contain_text("Read from the drawing in")
    expect(page.locator("#error")).to_be_hidden()
    page.screenshot(path=tmp_path / "drawing.png", full_page=True)

    not_an_image = {"name": "notes.png", "mimeType": "image/png", "buffer": b"a note, not a PNG"}
    page.set_input_files("#file", files=[not_an_image])
    expect(page.locator("#error")).to_contain_text("415: image: not an image")
    expect(page.locator("#result")).to_be_hidden()
    page.screenshot(path=tmp_path / "error.png", full_page=True)
