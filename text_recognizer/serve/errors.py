"""Every error a client gets is JSON, `{"error": "<message>"}`, and one log line."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.responses import JSONResponse

logger = logging.getLogger("text_recognizer.serve")


class ServeError(Exception):
    """A request answered with `status`: 400 malformed, 401 no or wrong token, 413 too large,
    415 not an image (or a body neither multipart nor JSON), 422 an image that cannot be read or
    options the model cannot do, 501 a page with no segmenter installed, 503 busy or out of
    time."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    method: str, path: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    logger.warning("%s %s %d: %s", method, path, status, message)
    return JSONResponse({"error": message}, status, headers=dict(headers or {}))
