"""Processed datasets: per split, fixed-size images and their texts in one h5 file.

A file is named by a digest of everything that determines its bytes (the source archive's sha256,
shapes, sizes, seeds, the format version), so a changed config builds a new file and the same one
is never built twice. It is written under a temporary name and carries its digest only once
complete, so a killed build is detected and redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from text_recognizer.data.paths import data_root, exclusive
from text_recognizer.errors import DataError
from text_recognizer.io import atomic_path

SPLITS = ("train", "val", "test")


class CorruptDataError(DataError):
    """A finished data file cannot be read back."""


class DoesNotFitError(DataError):
    """The configured input size or output length cannot hold the data; a run reports it in one
    line, naming both."""


CHUNK_BYTES = 1 << 20
Writer = Callable[[h5py.File], None]


@dataclass(frozen=True)
class ProcessedFile:
    """`<data root>/processed/<folder>/<prefix>-<digest>.h5`, the digest taken of `parts`:
    everything that determines the file's bytes, its format version first."""

    folder: str
    prefix: str
    parts: tuple[object, ...]

    @cached_property
    def digest(self) -> str:
        blob = json.dumps(self.parts, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return data_root() / "processed" / self.folder / f"{self.prefix}-{self.digest}.h5"

    def is_complete(self) -> bool:
        """True only for a file that finished writing with this digest; anything else is
        redone."""
        try:
            with h5py.File(self.path, "r") as f:
                return bool(f.attrs.get("digest") == self.digest)
        except (OSError, KeyError):
            return False

    def build(self, writer: Callable[[], Writer]) -> bool:
        """Write the file unless it is complete; True if built now. `writer` reads what the
        file is made from (an archive, another file) and returns what writes it: it is called
        only when the file must be built."""
        if self.is_complete():
            return False
        write, path = writer(), self.path
        with exclusive(path):
            if self.is_complete():
                return False
            started = time.perf_counter()
            with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
                write(f)
                f.attrs["digest"] = self.digest
            print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
        return True


def write_split(
    f: h5py.File,
    split: str,
    count: int,
    shape: tuple[int, int],
    samples: Iterable[tuple[np.ndarray, str, str]],
) -> None:
    """Store `count` (image, text, id) samples, writing images a chunk at a time."""
    group = f.create_group(split)
    rows = max(1, min(count, CHUNK_BYTES // (shape[0] * shape[1])))
    images = group.create_dataset(
        "images",
        (count, *shape),
        dtype=np.uint8,
        chunks=(rows, *shape) if count else None,
        compression="lzf" if count else None,
    )
    texts: list[str] = []
    ids: list[str] = []
    buffer: list[np.ndarray] = []
    for image, text, sample_id in samples:
        buffer.append(image)
        texts.append(text)
        ids.append(sample_id)
        if len(buffer) == rows:
            images[len(texts) - rows : len(texts)] = np.stack(buffer)
            buffer = []
    if buffer:
        images[len(texts) - len(buffer) : len(texts)] = np.stack(buffer)
    if len(texts) != count:
        raise RuntimeError(f"{split}: expected {count} samples, got {len(texts)}")
    group.create_dataset("texts", data=np.array(texts, dtype=h5py.string_dtype()))
    group.create_dataset("ids", data=np.array(ids, dtype=h5py.string_dtype()))


@contextlib.contextmanager
def reading(path: Path) -> Iterator[h5py.File]:
    """A finished data file, open for reading: one damaged after it was written (a bad disk, a
    partial copy) stops the run naming it and what to do, instead of an HDF5 traceback."""
    try:
        with h5py.File(path, "r") as f:
            yield f
    except (OSError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptDataError(
            f"{path} cannot be read ({reason}): delete it and run `text-recognizer-data "
            "generate` to build it again"
        ) from None


def read_split(path: Path, split: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Images (n, h, w) uint8, texts and ids of one split."""
    with reading(path) as f:
        group = f[split]
        texts = [t.decode() for t in group["texts"][:]]
        ids = [i.decode() for i in group["ids"][:]]
        return group["images"][:], texts, ids


def check_labels(texts: list[str], ids: list[str], max_output_length: int, what: str) -> None:
    """Every label, with its start and end tokens, must fit the configured output length."""
    if not texts:
        return
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    if len(texts[longest]) + 2 > max_output_length:
        raise DoesNotFitError(
            f"the longest {what} label ({ids[longest]}) has {len(texts[longest])} characters, "
            f"{len(texts[longest]) + 2} tokens with start and end, but max_output_length is "
            f"{max_output_length}: raise datamodule.max_output_length and the network's"
        )
