"""Errors a run reports in one line instead of a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class TrainingError(RuntimeError):
    """A run cannot go on; the message says why and what to do."""


class ConfigError(TrainingError):
    """A config value cannot work; the message names it."""


class NonFiniteLossError(TrainingError):
    """The loss, or the weights, became NaN or infinite."""


class OutOfMemoryError(TrainingError):
    """A batch did not fit in memory; the message names its size and what to lower."""


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's, and the CPU allocator's, which PyTorch raises as a plain RuntimeError."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError)
        and any(s in str(error) for s in ("out of memory", "can't allocate memory"))
    )


@contextlib.contextmanager
def naming_the_batch(shape: torch.Size, where: str) -> Iterator[None]:
    """Turn an out-of-memory error inside the block into one naming the batch that caused it."""
    try:
        yield
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
        size, *image = shape
        raise OutOfMemoryError(
            f"out of memory in {where} on a batch of {size} images of "
            f"{' x '.join(map(str, image))}: lower datamodule.batch_size (and raise "
            "trainer.accumulate_grad_batches to keep the effective batch size)"
        ) from None
