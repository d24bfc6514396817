"""Checkpoints written whole or not at all, and read with a one-line error when they cannot be."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from text_recognizer.io import atomic_path, remove_stale
from text_recognizer.model.errors import TrainingError


class CorruptCheckpointError(TrainingError):
    """A checkpoint file exists but cannot be read."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint beside its target, syncs it and renames it over the target.

    Lightning's own writer goes through an fsspec transaction: the bytes land in the system's
    temporary folder and are then moved, which is an atomic rename only when that folder is on
    the run's filesystem (otherwise a copy that a kill can cut short), and nothing is synced.
    Here `last.ckpt` is always a whole checkpoint, the previous one or the new one, even if the
    process is killed or the machine loses power while writing. What a write cut short leaves
    (`.<name>.<random>.tmp`) is removed by the next save of that name.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's way
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(path)
        remove_stale(target)
        with atomic_path(target) as tmp, tmp.open("wb") as f:
            torch.save(checkpoint, f)

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if not Path(path).exists() and "://" not in str(path):
            raise FileNotFoundError(f"checkpoint {path} does not exist: check ckpt_path")
        try:
            return super().load_checkpoint(path, map_location, weights_only)
        except Exception as error:  # torch.load fails in many ways on a damaged file
            reason = str(error).strip().split("\n")[0].split(". ")[0]
            raise CorruptCheckpointError(
                f"checkpoint {path} cannot be read ({type(error).__name__}: {reason}); "
                "resume from another checkpoint, or start afresh without ckpt_path"
            ) from error
