"""The FastAPI app: `POST /v1/recognize`, `POST /v1/page`, `GET /v1/model`, `/healthz`,
`/metrics` and the page at `/`. Reading an image and its stem run in a worker thread, finding a
page's lines in the segmenter's and decoding in the batcher's, so the event loop only moves
bytes; every failure is a JSON answer, never the process's end."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from text_recognizer.data.image_files import read_image_file
from text_recognizer.errors import ImageError, ImageTooLargeError, NotAnImageError
from text_recognizer.serve.batcher import Batcher, BusyError
from text_recognizer.serve.errors import ServeError, error_response, logger
from text_recognizer.serve.metrics import Metrics, MetricsMiddleware
from text_recognizer.serve.model import KINDS, Model
from text_recognizer.serve.pages import PageReader
from text_recognizer.serve.settings import Settings
from text_recognizer.serve.uploads import PAGE_FIELDS, BodyLimit, flag, integer, read_upload

STATIC = Path(__file__).parent / "static"
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
"""What an upload may be: common raster formats. Pillow's others (EPS, which runs Ghostscript,
among them) are not tried on untrusted bytes."""
MAX_BEAM = 16  # a request for a wider beam would hold the decoder for everyone else


def create_app(model: Model, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    recognizer = model.recognizer
    batcher = Batcher(recognizer, settings.max_batch, settings.max_wait_ms, settings.max_queue)
    metrics = Metrics(batcher.depth)
    batcher.metrics = metrics
    pages = PageReader(recognizer, batcher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One decode before the first request, which would otherwise pay torch's first call.
        blank = np.full((recognizer.transform.stem.height, 8), 255, dtype=np.uint8)
        await run_in_threadpool(recognizer.predict_fitted, [recognizer.fit(blank)])
        await batcher.start()
        yield
        await batcher.stop()
        pages.stop()

    app = FastAPI(
        title="text-recognizer",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, error: ServeError) -> JSONResponse:
        return error_response(
            request.method, request.url.path, error.status, error.message, error.headers
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(
            request.method, request.url.path, error.status_code, str(error.detail), error.headers
        )

    async def authorized(request: Request) -> None:
        if settings.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.strip().encode(), settings.token.encode()
        ):
            raise ServeError(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        if not batcher.running:
            raise ServeError(503, "the decoder is not running")
        return {"status": "ok", "queue_depth": batcher.depth()}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/model", dependencies=[Depends(authorized)])
    async def describe() -> dict[str, Any]:
        options = {"beam": [1, MAX_BEAM], "kind": [model.kind], "stem": [False, True]}
        return {**model.info, "options": options, "limits": settings.limits()}

    def image_of(data: bytes) -> Image.Image:
        try:
            return read_image_file(data, "image", settings.max_pixels, FORMATS)
        except ImageTooLargeError as error:
            raise ServeError(413, str(error)) from None
        except NotAnImageError as error:
            raise ServeError(415, f"{error}; send one of {', '.join(FORMATS)}") from None
        except ImageError as error:
            raise ServeError(422, str(error)) from None

    def fit(data: bytes) -> np.ndarray:
        return recognizer.fit(image_of(data))

    async def answered(path: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> JSONResponse:
        """`work`'s answer within the timeout, with the seconds it took; its failure as JSON."""
        began = time.perf_counter()
        try:
            async with asyncio.timeout(settings.timeout_s):
                answer = await work()
        except TimeoutError:
            raise ServeError(503, f"no answer within {settings.timeout_s:g} s") from None
        except BusyError as error:
            raise ServeError(503, str(error), headers={"Retry-After": "1"}) from None
        except (ServeError, HTTPException):  # answered as they say
            raise
        except ClientDisconnect:
            raise ServeError(400, "the client disconnected before its upload was in") from None
        except Exception as error:  # a bug, not the input: answered, and the server goes on
            logger.exception("POST %s 500: %s", path, error)
            return JSONResponse({"error": f"internal error ({type(error).__name__})"}, 500)
        seconds = round(time.perf_counter() - began, 6)
        model_info = {"kind": model.kind, "sha256": model.info["sha256"]}
        return JSONResponse({**answer, "seconds": seconds, "model": model_info})

    @app.post("/v1/recognize", dependencies=[Depends(authorized)])
    async def recognize(request: Request) -> JSONResponse:
        async def work() -> dict[str, Any]:
            with batcher.reading():
                upload = await read_upload(request)
                beam = check_options(upload.options, model.kind, model.default_beam)
                fitted = await run_in_threadpool(fit, upload.image)
            prediction = await batcher.submit(fitted, beam)
            answer: dict[str, Any] = {
                "text": prediction.text,
                "lines": prediction.text.split("\n"),
            }
            if flag(upload.options, "stem"):
                answer["stem"] = await run_in_threadpool(png_data_url, fitted)
            return answer

        return await answered("/v1/recognize", work)

    @app.post("/v1/page", dependencies=[Depends(authorized)])
    async def read_page(request: Request) -> JSONResponse:
        async def work() -> dict[str, Any]:
            pages.check()
            upload = await read_upload(request, PAGE_FIELDS)
            beam = beam_of(upload.options, model.default_beam)
            draw = flag(upload.options, "overlay")
            image = await run_in_threadpool(image_of, upload.image)
            reading = await pages.read(image, beam)
            answer = {"text": reading.text, "lines": reading.described()}
            if draw:
                answer["overlay"] = await run_in_threadpool(lambda: png_data_url(reading.overlay()))
            return answer

        return await answered("/v1/page", work)

    return app


def check_options(options: dict[str, Any], kind: str, default_beam: int) -> int:
    """`beam` 1 (greedy) to `MAX_BEAM`, and `kind` the model's own; returns the beam width."""
    beam = beam_of(options, default_beam)
    asked = options.get("kind", kind)
    if asked not in KINDS.values():
        raise ServeError(422, f"kind must be one of {', '.join(KINDS.values())}, got {asked!r}")
    if asked != kind:
        raise ServeError(422, f"this model reads {kind}s, not {asked}s")
    flag(options, "stem")
    return beam


def beam_of(options: dict[str, Any], default: int) -> int:
    """`beam`: 1 (greedy) to `MAX_BEAM`, `default` where the request names none."""
    if not 1 <= (beam := integer(options, "beam", default)) <= MAX_BEAM:
        raise ServeError(422, f"beam {beam}: choose a width from 1 (greedy) to {MAX_BEAM}")
    return beam


def png_data_url(image: np.ndarray | Image.Image) -> str:
    """An image as the web page shows it: the stemmed line, or a page's overlay."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
