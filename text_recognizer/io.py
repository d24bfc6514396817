"""Files written whole or not at all, and one builder at a time.

A file is written under a temporary name beside its target, synced, renamed over the target and
the rename synced too: after a kill or a power loss the target is the old file or the new one,
never a part. A lock beside the target makes a second process wait for the first.
"""

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


def _fsync(path: Path) -> None:
    """Sync a file's bytes, or a folder's entries (which makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_mode(path: Path) -> None:
    """The permissions a plain create would give: `mkstemp` and `mkdtemp` make files and folders
    private to their owner, which would lock other users out of a shared data root."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def publish(tmp: Path, target: Path) -> None:
    """Rename a finished file or folder `tmp` onto `target` durably, with a create's mode."""
    if tmp.is_file():
        _fsync(tmp)
    publish_mode(tmp)
    os.replace(tmp, target)
    _fsync(target.parent)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`, published onto `target` only if the block
    succeeds; on failure it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale(target: Path) -> None:
    """Remove what a killed writer of `target` left: the temporary names `atomic_path` (and
    `tempfile` with the same prefix and suffix) give beside it."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive(target: Path, hint: str = "make it writable") -> Iterator[None]:
    """Hold `<target>.lock` while building `target`: a second process building the same thing
    waits, then finds it done. Under the lock, what a killed builder left is removed. A folder
    that cannot be written fails naming it, and `hint` says what to do."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(target) + ".lock")
        lock.acquire()
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise PermissionError(
            f"cannot write {error.filename or target.parent} ({error.strerror}): {hint}"
        ) from None
    try:
        remove_stale(target)
        yield
    finally:
        lock.release()
