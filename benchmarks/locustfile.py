"""The load `benchmarks/serve.py` puts on a server: each user posts a line image of the synthetic
test split, waits for its text, and posts the next. A fraction of the posts are bad inputs (not
an image, too many bytes, too many pixels, truncated), each of which must be refused with its
own 4xx; any other answer, a 5xx above all, is a failure.

Its own options (Locust runs it in its own process): `--images DIR` of PNGs, `--bad-fraction`,
and `--max-upload-bytes`, the server's limit, which the oversized body passes by one byte.
"""

import functools
import random
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

BOUNDARY = uuid.uuid4().hex
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--images", help="a folder of line PNGs to post")
    parser.add_argument("--bad-fraction", type=float, default=0.0)
    parser.add_argument("--max-upload-bytes", type=int, help="the server's limit")


def multipart(data: bytes) -> bytes:
    """A form with the one file field `image`, built once so the client spends no time on it."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="line.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels and holds none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))


@functools.cache
def bodies(folder: str, limit: int) -> tuple[list[bytes], dict[str, tuple[bytes, int]]]:
    """The good posts, and the bad ones with the status each must get."""
    pngs = [p.read_bytes() for p in sorted(Path(folder).glob("*.png"))]
    bad = {
        "not an image": (multipart(b"a note, not an image\n" * 20), 415),
        "too many bytes": (b"\0" * (limit + 1), 413),
        "too many pixels": (multipart(png_header(20_000, 20_000)), 413),
        "truncated": (multipart(pngs[0][: len(pngs[0]) // 2]), 422),
    }
    return [multipart(png) for png in pngs], bad


class Reader(FastHttpUser):
    wait_time = constant(0)  # closed loop: the next request as soon as the answer is in

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.good, self.bad = bodies(options.images, options.max_upload_bytes)
        self.bad_fraction = options.bad_fraction

    @task
    def recognize(self) -> None:
        if random.random() < self.bad_fraction:
            kind = random.choice(list(self.bad))
            body, expected = self.bad[kind]
            name = f"bad: {kind}"
        else:
            body, expected, name = random.choice(self.good), 200, "line"
        headers = {"Content-Type": CONTENT_TYPE}
        with self.client.post(
            "/v1/recognize", data=body, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code != expected:
                error = f" ({response.error})" if response.error else ""
                response.failure(f"status {response.status_code}, expected {expected}{error}")
            elif expected == 200 and "text" not in response.json():
                response.failure("no text in the answer")
            else:
                response.success()
