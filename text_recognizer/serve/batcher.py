"""Dynamic batching: requests are decoded in batches of up to `max_batch`, on one thread off the
event loop, so that throughput under load is the batch speed. While a batch decodes, the next
one gathers. The first request of a batch waits, at most `max_wait`, only for requests the server
has already received and is still reading: a lone request never waits, and the requests of many
clients who sent theirs at nearly the same time are decoded together."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from text_recognizer.decode import BeamOptions
from text_recognizer.inference.recognizer import Prediction, Recognizer
from text_recognizer.serve.metrics import Metrics


class BusyError(Exception):
    """The queue is full, or the batcher is not running."""


@dataclass(eq=False)
class _Request:
    fitted: np.ndarray
    answer: asyncio.Future[Prediction] = field(repr=False)
    beam: int = 1


class Batcher:
    def __init__(
        self, recognizer: Recognizer, max_batch: int, max_wait_ms: float, max_queue: int
    ) -> None:
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.metrics: Metrics | None = None
        self._waiting: collections.deque[_Request] = collections.deque()
        self._reading = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._decoder: concurrent.futures.ThreadPoolExecutor | None = None

    def depth(self) -> int:
        """Requests waiting for a batch (a request that gave up is no longer counted)."""
        return len(self._waiting)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        # One thread: batches decode one after another, each with all of torch's threads.
        self._decoder = concurrent.futures.ThreadPoolExecutor(1, "decode")
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Answer what still waits with `BusyError`, and let the batch in flight finish."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._waiting:
            request = self._waiting.popleft()
            if not request.answer.done():
                request.answer.set_exception(BusyError("the server is shutting down"))
        if self._decoder is not None:
            self._decoder.shutdown(wait=True)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around reading a request and its stem: a gathering batch waits for it."""
        self._reading += 1
        try:
            yield
        finally:
            self._reading -= 1
            self._arrived.set()

    async def submit(self, fitted: np.ndarray, beam: int = 1) -> Prediction:
        """The image's prediction once its batch is decoded."""
        return (await self.submit_all([fitted], beam))[0]

    async def submit_all(self, fitted: Sequence[np.ndarray], beam: int = 1) -> list[Prediction]:
        """Each image's prediction, in order: all are queued at once (or none, `BusyError`), so
        that a page's lines are decoded together and with other requests. Cancelling the wait (a
        timeout), or one of them failing, takes those not yet in a batch out of the queue."""
        if not self.running:
            raise BusyError("the decoder is not running")
        if (waiting := len(self._waiting)) + len(fitted) > self.max_queue:
            message = f"{waiting} requests are already waiting"
            if len(fitted) > 1:
                message += f"; {len(fitted)} more would pass the limit of {self.max_queue}"
            raise BusyError(message)
        loop = asyncio.get_running_loop()
        requests = [_Request(image, loop.create_future(), beam) for image in fitted]
        self._waiting.extend(requests)
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(request.answer for request in requests)))
        except BaseException:
            for request in requests:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(request)
            raise

    async def _arrival(self, timeout: float | None = None) -> bool:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _gather(self) -> list[_Request]:
        while not self._waiting:
            await self._arrival()
        deadline = time.perf_counter() + self.max_wait
        while len(self._waiting) < self.max_batch and self._reading:
            left = deadline - time.perf_counter()
            if left <= 0 or not await self._arrival(left):
                break
        size = min(self.max_batch, len(self._waiting))
        return [self._waiting.popleft() for _ in range(size)]

    async def _run(self) -> None:
        assert self._decoder is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:  # all gave up while the batch gathered
                continue
            began = time.perf_counter()
            try:
                predictions = await loop.run_in_executor(self._decoder, self._decode, batch)
            except Exception as error:  # these requests fail; the batcher goes on
                for request in batch:
                    if not request.answer.done():
                        request.answer.set_exception(error)
                continue
            if self.metrics is not None:
                self.metrics.batch_size.observe(len(batch))
                self.metrics.batch_seconds.observe(time.perf_counter() - began)
            for request, prediction in zip(batch, predictions, strict=True):
                if not request.answer.done():
                    request.answer.set_result(prediction)

    def _decode(self, batch: list[_Request]) -> list[Prediction]:
        """The batch's predictions in order, requests of one beam width decoded together; a
        beam fuses the language model of the recognizer's own search, if it has one."""
        predictions: dict[int, Prediction] = {}
        own = self.recognizer.beam
        for width in sorted({request.beam for request in batch}):
            chosen = [i for i, request in enumerate(batch) if request.beam == width]
            beam = replace(own, width=width) if own and width > 1 else BeamOptions(width)
            read = self.recognizer.predict_fitted(
                [batch[i].fitted for i in chosen], len(chosen), beam=beam
            )
            predictions.update(zip(chosen, read, strict=True))
        return [predictions[i] for i in range(len(batch))]
