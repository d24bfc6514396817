"""Where data lives, and how it is written so a killed run never leaves a finished-looking file."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

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
        publish_mode(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def publish_mode(path: Path) -> None:
    """The permissions a plain create would give: `mkstemp` and `mkdtemp` make files and folders
    private to their owner, which would lock other users out of a shared data root."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


@contextlib.contextmanager
def exclusive(target: Path) -> Iterator[None]:
    """Hold `<target>.lock` while building `target`: a second process building the same thing
    waits, then finds it done. Under the lock, what a killed builder left half-written (the
    temporary names `atomic_path` and `tempfile` give beside `target`) is removed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(target) + ".lock")
        lock.acquire()
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise PermissionError(
            f"cannot write {error.filename or target.parent} ({error.strerror}): make it "
            f"writable, or point {DATA_DIR_ENV} at a writable directory"
        ) from None
    try:
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        yield
    finally:
        lock.release()
