"""`POST /v1/page`'s reading: a page image's lines found by the segmenter, cut by the one line
cutter, and read through the batcher like any other line, so they batch with other requests."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from text_recognizer.data.documents.images import line_image
from text_recognizer.data.documents.overlay import overlay
from text_recognizer.data.documents.record import Line, Point, by_region, page_text
from text_recognizer.data.documents.segment import (
    SegmenterMissingError,
    found_lines,
    require_segmenter,
)
from text_recognizer.inference.pages import reads_paragraphs
from text_recognizer.inference.recognizer import Recognizer
from text_recognizer.serve.batcher import Batcher
from text_recognizer.serve.errors import ServeError


@dataclass(frozen=True)
class PageReading:
    pixels: np.ndarray
    """The page, uint8 grayscale."""
    lines: tuple[Line, ...]
    """In reading order."""
    texts: tuple[str, ...]
    """Each line's reading."""

    @property
    def text(self) -> str:
        """A line each, a blank line between regions."""
        read = dict(zip((line.id for line in self.lines), self.texts, strict=True))
        return page_text([[read[line.id] for line in region] for region in by_region(self.lines)])

    def described(self) -> list[dict[str, Any]]:
        """Each line as the answer gives it, in pixels of the page."""
        return [
            {
                "id": line.id,
                "region": line.region,
                "text": text,
                "polygon": _points(line.outline),
                "baseline": _points(line.baseline) if line.baseline else None,
            }
            for line, text in zip(self.lines, self.texts, strict=True)
        ]

    def overlay(self) -> Image.Image:
        """The page with each line's outline and reading drawn on it."""
        texts = {line.id: text for line, text in zip(self.lines, self.texts, strict=True)}
        return overlay(self.pixels, self.lines, texts)


class PageReader:
    """Finds lines one page at a time, on a thread of its own rather than in starlette's pool
    (which would run as many pages at once as it has threads): the segmenter takes seconds a
    page with all of torch's threads, so two pages at once would only share them, and a page
    whose request ran out of time while it waited is never segmented."""

    def __init__(self, recognizer: Recognizer, batcher: Batcher) -> None:
        self.recognizer = recognizer
        self.batcher = batcher
        self._segmenter = concurrent.futures.ThreadPoolExecutor(1, "segment")

    def check(self) -> None:
        """Refuse at once what no page could be read with: a paragraph model (422), or no
        segmenter installed (501)."""
        if reads_paragraphs(self.recognizer):
            raise ServeError(
                422,
                "this server's model reads whole paragraphs, not found lines: send the page to "
                "/v1/recognize, or serve a line model to read pages here",
            )
        try:
            require_segmenter()
        except SegmenterMissingError as error:
            raise ServeError(501, str(error)) from None

    async def read(self, image: Image.Image, beam: int) -> PageReading:
        """The page's lines and their readings (none where no line is found)."""
        loop = asyncio.get_running_loop()
        lines = await loop.run_in_executor(self._segmenter, found_lines, image)
        with self.batcher.reading():
            pixels, fitted = await run_in_threadpool(self._cut, image, lines)
        predictions = await self.batcher.submit_all(fitted, beam)
        return PageReading(pixels, lines, tuple(p.text for p in predictions))

    def stop(self) -> None:
        """Drop the pages still waiting; one being segmented finishes on its thread."""
        self._segmenter.shutdown(wait=False, cancel_futures=True)

    def _cut(
        self, image: Image.Image, lines: Sequence[Line]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The page's pixels, and each line cut from them and put through the stem."""
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels, [self.recognizer.fit(line_image(pixels, line)) for line in lines]


def _points(points: Sequence[Point]) -> list[list[float]]:
    return [[round(x, 1), round(y, 1)] for x, y in points]
