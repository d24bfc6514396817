"""Where data lives, and how it is written so a killed run never leaves a finished-looking file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

DATA_DIR_ENV = "TEXT_RECOGNIZER_DATA_DIR"


def data_root() -> Path:
    """`./data` unless `TEXT_RECOGNIZER_DATA_DIR` points elsewhere."""
    root = Path(os.environ.get(DATA_DIR_ENV, "data")).expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"data root {root} is a file; point {DATA_DIR_ENV} at a directory")
    return root


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`, renamed onto `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
