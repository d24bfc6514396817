"""Errors a run reports in one line instead of a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from pytorch_lightning.utilities.memory import is_oom_error

from text_recognizer.errors import TextRecognizerError


class TrainingError(TextRecognizerError, RuntimeError):
    """A run cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss, or the weights, became NaN or infinite."""


class OutOfMemoryError(TrainingError):
    """A batch did not fit in memory; the message names its size and what to lower."""


@contextlib.contextmanager
def naming_the_batch(shape: torch.Size, where: str) -> Iterator[None]:
    """Turn an out-of-memory error inside the block (CUDA's, or the CPU allocator's, which
    PyTorch raises as a plain RuntimeError) into one naming the batch that caused it."""
    try:
        yield
    except RuntimeError as error:
        if not is_oom_error(error):
            raise
        size, *image = shape
        lower = (
            "datamodule.eval_batch_size"
            if where in ("validation", "testing")
            else "datamodule.batch_size (and raise trainer.accumulate_grad_batches to keep the "
            "effective batch size)"
        )
        raise OutOfMemoryError(
            f"out of memory in {where} on a batch of {size} images of "
            f"{' x '.join(map(str, image))}: lower {lower}"
        ) from None
