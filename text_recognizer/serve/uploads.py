"""Reading a recognition request: its body counted against the upload limit as it arrives, then
the image's bytes and the options out of a multipart form or a JSON object."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from text_recognizer.serve.errors import ServeError, error_response

FIELDS = frozenset({"image", "beam", "kind", "stem"})
"""What `/v1/recognize` reads."""
PAGE_FIELDS = frozenset({"image", "beam", "overlay"})
"""What `/v1/page` reads."""
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


class BodyLimit:
    """Refuses a body over `limit` bytes (413): at once when its Content-Length says so, else
    as soon as what has arrived passes the limit, so no upload is held whole beyond it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        problem = None
        if declared is not None and not declared.isdigit():
            problem = 400, f"Content-Length {declared.decode(errors='replace')!r} is not a number"
        elif declared is not None and int(declared) > self.limit:
            problem = 413, self._too_large(f"{int(declared):,} bytes")
        if problem is not None:
            response = error_response(scope["method"], scope["path"], *problem)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise ServeError(413, self._too_large(f"more than {self.limit:,} bytes"))
            return message

        await self.app(scope, counted, send)

    def _too_large(self, size: str) -> str:
        return f"the body holds {size}; at most {self.limit:,} are accepted"


@dataclass(frozen=True)
class Upload:
    image: bytes
    options: dict[str, Any]
    """The other fields as sent: strings from a form, JSON values from JSON."""


async def read_upload(request: Request, fields: frozenset[str] = FIELDS) -> Upload:
    """A multipart form with an `image` file, or a JSON object with a base64 `image` (a data
    URL's prefix is allowed); the other `fields` are options, any other field an error."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=len(fields))
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ServeError(400, "the form has no file field 'image'")
        options: dict[str, Any] = {k: v for k, v in form.items() if k != "image"}
        return Upload(await upload.read(), _known(options, fields))
    if media == "application/json":
        try:
            payload = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ServeError(400, f"the body is not JSON ({error})") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
            raise ServeError(400, "the JSON body must be an object with a base64 string 'image'")
        options = {k: v for k, v in payload.items() if k != "image"}
        return Upload(_base64(payload["image"]), _known(options, fields))
    raise ServeError(
        415,
        f"content type {media or 'none'!r}: send multipart/form-data with a file 'image', or "
        "application/json with a base64 'image'",
    )


def _base64(text: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:  # line breaks, as `base64` writes them, are allowed; any other stray character is not
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ServeError(400, f"'image' is not valid base64 ({error})") from None


def _known(options: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    if unknown := sorted(options.keys() - fields):
        raise ServeError(422, f"unknown field(s) {', '.join(unknown)}; known: {sorted(fields)}")
    return options


def integer(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ServeError(422, f"{name} must be an integer, got {value!r}")


def flag(options: dict[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    raise ServeError(422, f"{name} must be true or false, got {value!r}")
