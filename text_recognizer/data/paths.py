"""Where data lives; writes under it go through `text_recognizer.io` (whole or not at all)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from text_recognizer import io
from text_recognizer.io import atomic_path as atomic_path  # the data packages' one way to write

DATA_DIR_ENV = "TEXT_RECOGNIZER_DATA_DIR"


def data_root() -> Path:
    """`./data` unless `TEXT_RECOGNIZER_DATA_DIR` points elsewhere."""
    root = Path(os.environ.get(DATA_DIR_ENV, "data")).expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"data root {root} is a file; point {DATA_DIR_ENV} at a directory")
    return root


def exclusive(target: Path) -> contextlib.AbstractContextManager[None]:
    """`io.exclusive` for a file under the data root, whose fix may be another data root."""
    return io.exclusive(
        target, hint=f"make it writable, or point {DATA_DIR_ENV} at a writable directory"
    )
