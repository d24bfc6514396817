"""Small archives in the real datasets' layouts, and a loopback server to download them from.

IAM: a few forms drawn in handwriting fonts at half resolution, with XML at full resolution
(`form/handwritten-part/line/word/cmp`) and the official `task/` split files. EMNIST: a MATLAB file
in the real struct layout (`dataset.train/test.images` column-major N x 784, `labels` N x 1,
`dataset.mapping` 62 x 2). Both zipped as the real archives are.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import socket
import string
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.io import savemat

from text_recognizer.data.synthetic.fonts import load_fonts


def quoteattr(text: str) -> str:
    """An XML attribute value as IAM writes it: double quotes, `&quot;` inside."""
    return '"' + escape(text, {'"': "&quot;"}) + '"'


EMNIST_CLASSES = string.digits + string.ascii_uppercase + string.ascii_lowercase


@dataclass(frozen=True)
class FakeForm:
    id: str
    writer: str
    lines: tuple[str, ...]
    task: str | None  # the task/ file that lists its lines, or None


# Writers 000-006; 000's second form and 004's second are not in the split files (they follow
# their writer), 005 is not listed at all (train), and 006 is listed in train and test (test wins).
IAM_FORMS = (
    FakeForm(
        "a01-000u",
        "000",
        ("A MOVE to stop Mr. Gaitskell", 'from "nominating" any more'),
        "trainset",
    ),
    FakeForm(
        "a01-003", "000", ("Labour life Peers is to be made", "at a meeting of Labour MPs"), None
    ),
    FakeForm(
        "b02-010",
        "001",
        ("The tide turned at 3:45 today;", "nobody (not even Sam) knew why!", "Then it rained."),
        "trainset",
    ),
    FakeForm(
        "c03-000",
        "002",
        ("Is it #1 or #2? Hard to say,", "but 7+8*2 is 23 & that's it."),
        "validationset1",
    ),
    FakeForm(
        "d04-000",
        "003",
        ("Where shall we go next week", "on our long summer holiday?"),
        "validationset2",
    ),
    FakeForm(
        "m01-049", "004", ("She wrote two letters/notes", "to her friends in London."), "testset"
    ),
    FakeForm(
        "m01-060", "004", ("Then she walked home slowly", "under the grey sky - alone."), None
    ),
    FakeForm("e05-000", "005", ("Quick brown foxes jump over", "lazy dogs; every day."), None),
    FakeForm(
        "f06-000", "006", ("Writers are kept apart by", "the split, whatever happens."), "trainset"
    ),
    FakeForm(
        "f06-001", "006", ("This one is listed as a test", "form, so both go to test."), "testset"
    ),
)
TASK_FILES = ("trainset", "validationset1", "validationset2", "testset")
HALF_WIDTH, HALF_HEIGHT = 620, 440  # the form image (half resolution); the XML is at twice this


def _font(index: int, size: int) -> ImageFont.FreeTypeFont:
    fonts = load_fonts(["kalam", "caveat", "delius"])
    return ImageFont.truetype(str(fonts[index % len(fonts)].path), size)


def draw_form(form: FakeForm, index: int) -> tuple[Image.Image, str]:
    """The half-resolution scan and its full-resolution XML."""
    image = Image.new("L", (HALF_WIDTH, HALF_HEIGHT), 245)
    draw = ImageDraw.Draw(image)
    draw.text((30, 20), " ".join(form.lines), font=ImageFont.load_default(12), fill=20)
    draw.line((20, 60, HALF_WIDTH - 20, 60), fill=0, width=2)
    font = _font(index, 26)
    xml_lines = []
    y = 90
    for n, text in enumerate(form.lines):
        x = 40 + 10 * (n % 2)
        words = []
        for w, word in enumerate(text.split(" ")):
            x0, y0, x1, y1 = (int(v) for v in draw.textbbox((x, y), word, font=font))
            draw.text((x, y), word, font=font, fill=30)
            words.append(
                f'<word id="{form.id}-{n:02d}-{w:02d}" text={quoteattr(word)}>'
                f'<cmp x="{2 * x0}" y="{2 * y0}" width="{2 * (x1 - x0)}" height="{2 * (y1 - y0)}"/>'
                "</word>"
            )
            x = x1 + 12
        xml_lines.append(
            f'<line id="{form.id}-{n:02d}" text={quoteattr(text)} segmentation="ok">'
            + "".join(words)
            + "</line>"
        )
        y += 58
    xml = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f'<form id="{form.id}" writer-id="{form.writer}" width="{2 * HALF_WIDTH}" '
        f'height="{2 * HALF_HEIGHT}">\n'
        f"<machine-printed-part><machine-print-line text={quoteattr(form.lines[0])}/>"
        "</machine-printed-part>\n"
        "<handwritten-part>" + "\n".join(xml_lines) + "</handwritten-part>\n</form>\n"
    )
    return image, xml


def make_iam_zip(path: Path, forms: tuple[FakeForm, ...] = IAM_FORMS, task: bool = True) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for index, form in enumerate(forms):
            image, xml = draw_form(form, index)
            with zf.open(f"iamdb/forms/{form.id}.jpg", "w") as f:
                image.save(f, format="JPEG", quality=90)
            zf.writestr(f"iamdb/xml/{form.id}.xml", xml.encode("latin-1"))
        if task:
            for name in TASK_FILES:
                ids = [
                    f"{form.id}-{n:02d}"
                    for form in forms
                    if form.task == name
                    for n in range(len(form.lines))
                ]
                zf.writestr(f"iamdb/task/{name}.txt", "\n".join(ids) + "\n")
    return path


def emnist_images(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Upright 28 x 28 characters, light on dark as EMNIST's are, and their labels 0-61."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, char in enumerate(EMNIST_CLASSES):
        for i in range(per_class):
            image = Image.new("L", (28, 28), 0)
            ImageDraw.Draw(image).text(
                (14 + int(rng.integers(-2, 3)), 14), char, font=_font(i, 20), fill=255, anchor="mm"
            )
            images.append(np.asarray(image))
            labels.append(label)
    return np.stack(images), np.array(labels)


def make_emnist_zip(path: Path, per_class: tuple[int, int] = (3, 2)) -> tuple[Path, dict[str, Any]]:
    """matlab.zip with matlab/emnist-byclass.mat; returns the upright images it holds."""
    splits: dict[str, Any] = {}
    upright: dict[str, Any] = {}
    for seed, (split, count) in enumerate(zip(("train", "test"), per_class, strict=True)):
        images, labels = emnist_images(count, seed)
        upright[split] = (images, labels)
        # MATLAB stores each 28 x 28 image column-major: a row of 784 is the transposed image.
        splits[split] = {
            "images": images.transpose(0, 2, 1).reshape(-1, 784),
            "labels": labels.reshape(-1, 1).astype(np.float64),
            "writers": np.zeros((len(labels), 1)),
        }
    mapping = np.array([[i, ord(c)] for i, c in enumerate(EMNIST_CLASSES)], dtype=np.float64)
    mat = path.parent / "emnist-byclass.mat"
    savemat(mat, {"dataset": {**splits, "mapping": mapping}})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(mat, "matlab/emnist-byclass.mat")
        zf.writestr("matlab/emnist-digits.mat", b"not needed, never unpacked")
    mat.unlink()
    return path, upright


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_metadata(root: Path, name: str, url: str, digest: str, **extra: Any) -> Path:
    """Point the data root's metadata for `name` at `url`."""
    path = root / "raw" / name / "metadata.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f'url = "{url}"', f'filename = "{url.rsplit("/", 1)[-1]}"', f'sha256 = "{digest}"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Server:
    url: str
    requests: list[str] = field(default_factory=list)


class _Handler(SimpleHTTPRequestHandler):
    server_log: list[str]
    delay: float

    def log_message(self, format: str, *args: Any) -> None:
        self.server_log.append(self.path)

    def copyfile(self, source: Any, outputfile: Any) -> None:
        while chunk := source.read(64 << 10):
            outputfile.write(chunk)
            time.sleep(self.delay)


@contextlib.contextmanager
def serve(folder: Path, delay: float = 0.0) -> Iterator[Server]:
    """An HTTP server for `folder` on 127.0.0.1, stopped when the block ends; `delay` seconds
    between 64 KiB chunks make a download slow enough to be caught in the middle."""
    log: list[str] = []
    handler = type("Handler", (_Handler,), {"server_log": log, "delay": delay})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_port}", log)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
