"""Fetch, verify and unpack the real datasets' archives.

What to fetch (url, filename, sha256, split ids) is read from
`<data root>/raw/<name>/metadata.toml`, falling back to the package's own copy (`raw/` beside
this module, so that an installed wheel has it too): a relocated data root (or a test) can point
at another server. Archives land in `<data root>/downloaded/<name>/<filename>` and unpack beside
them into `extracted/`. Nothing is trusted before its sha256 matches, and nothing half-written
is ever left under a final name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from tqdm import tqdm

from text_recognizer.data.paths import data_root, exclusive
from text_recognizer.errors import DataError, MissingDataError, TextRecognizerError
from text_recognizer.io import atomic_path, publish

PACKAGED_RAW = Path(__file__).resolve().parent / "raw"
CHUNK = 1 << 20
TIMEOUT_SECONDS = 60
# Unpacking limits: real archives are images and MATLAB files (ratio near 1), so anything far
# beyond these is a damaged or hostile archive, refused before a byte is written.
MAX_UNPACKED_BYTES = 16 << 30
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 1 << 20  # tiny members (XML) may compress well without being suspicious
MARKER = ".archive-sha256"


class DownloadError(TextRecognizerError, RuntimeError):
    """The archive could not be fetched; the message says how to place it by hand."""


class ChecksumError(DataError):
    """A file's sha256 is not the one the metadata promises."""


class UnsafeArchiveError(DataError):
    """An archive member would land outside its folder, or unpack to an absurd size."""


class MissingArchiveError(MissingDataError):
    """A real dataset's archive has not been downloaded."""


@dataclass(frozen=True)
class Metadata:
    """Where one dataset's archive comes from and what it must hash to."""

    name: str
    url: str
    filename: str
    sha256: str
    source: Path
    test_ids: tuple[str, ...] = ()

    def folder(self, root: Path | None = None) -> Path:
        return (root or data_root()) / "downloaded" / self.name

    def archive(self, root: Path | None = None) -> Path:
        return self.folder(root) / self.filename

    def extracted(self, root: Path | None = None) -> Path:
        return self.folder(root) / "extracted"


def metadata_path(name: str, root: Path | None = None) -> Path:
    """The data root's metadata.toml for `name` if it has one, else the package's."""
    local = (root or data_root()) / "raw" / name / "metadata.toml"
    return local if local.is_file() else PACKAGED_RAW / name / "metadata.toml"


def load_metadata(name: str, root: Path | None = None) -> Metadata:
    path = metadata_path(name, root)
    if not path.is_file():
        raise MissingDataError(
            f"no metadata for dataset {name!r}: expected {path} (url, filename, sha256)"
        )
    with path.open("rb") as f:
        try:
            fields: dict[str, Any] = tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise DataError(f"{path} is not valid TOML: {error}") from None
    missing = [key for key in ("url", "filename", "sha256") if not fields.get(key)]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}")
    if PurePosixPath(fields["filename"]).name != fields["filename"]:
        raise DataError(f"{path}: filename {fields['filename']!r} must be a bare file name")
    return Metadata(
        name=name,
        url=str(fields["url"]),
        filename=str(fields["filename"]),
        sha256=str(fields["sha256"]).lower(),
        source=path,
        test_ids=tuple(fields.get("test_ids", ())),
    )


def check_url(url: str) -> None:
    """Only https, or plain http to this machine (the tests' local server)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    raise DataError(f"refusing to download {url}: only https (or http to a loopback address)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect must obey the same scheme rule as the URL that led to it."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def sha256sum(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify(path: Path, sha256: str) -> None:
    """Raise (and delete `path`) unless its sha256 is `sha256`: a wrong file is never kept."""
    actual = sha256sum(path)
    if actual != sha256:
        path.unlink()
        raise ChecksumError(
            f"{path} has sha256 {actual}, expected {sha256}: removed it; download it again "
            "or place the right file there"
        )


def download(meta: Metadata, root: Path | None = None) -> bool:
    """Fetch the archive unless a verified copy is present; True if it was fetched.

    One process at a time fetches a given archive; another waits, then finds it there."""
    target = meta.archive(root)
    if target.is_file() and sha256sum(target) == meta.sha256:  # also on a read-only data root
        return False
    with exclusive(target):
        if target.exists():
            try:
                verify(target, meta.sha256)
                return False
            except ChecksumError as error:
                print(error)
        _fetch(meta, target)
    return True


def _fetch(meta: Metadata, target: Path) -> None:
    check_url(meta.url)
    by_hand = (
        f"without internet, place {meta.filename} at {target} by hand "
        f"(it must have sha256 {meta.sha256})"
    )
    opener = urllib.request.build_opener(_CheckedRedirects)
    try:
        response = opener.open(meta.url, timeout=TIMEOUT_SECONDS)
    except OSError as error:  # URLError, refused connection, timeout, DNS
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot download {meta.url} ({reason}); {by_hand}") from None
    with response, atomic_path(target) as tmp:
        try:
            actual = _stream(response, tmp, meta.filename)
        except OSError as error:
            raise DownloadError(f"download of {meta.url} broke off ({error}); {by_hand}") from None
        if actual != meta.sha256:
            raise ChecksumError(
                f"{meta.url} sent a file with sha256 {actual}, expected {meta.sha256} "
                f"(from {meta.source}): removed it"
            )


def _stream(response: IO[bytes], path: Path, name: str) -> str:
    """Copy the response into `path` with a progress bar; return its sha256."""
    digest = hashlib.sha256()
    total = int(getattr(response, "headers", {}).get("Content-Length") or 0) or None
    with (
        path.open("wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name) as bar,
    ):
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path, refusing anything that could land outside the folder."""
    path = PurePosixPath(name)
    if (
        path.is_absolute()
        or "\\" in name
        or ".." in path.parts
        or (path.parts and ":" in path.parts[0])
    ):
        raise UnsafeArchiveError(f"{archive}: refusing member {name!r}, it escapes the folder")
    return path


def extract(
    archive: Path,
    target: Path,
    members: Sequence[str] | None = None,
    max_bytes: int = MAX_UNPACKED_BYTES,
    max_ratio: float = MAX_RATIO,
) -> None:
    """Unpack `members` (default: all) of a zip into `target`, after checking every member."""
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if members is not None:
            by_name = {info.filename: info for info in infos}
            absent = [m for m in members if m not in by_name]
            if absent:
                raise MissingDataError(f"{archive} has no {', '.join(absent)}")
            infos = [by_name[m] for m in members]
        paths = [_member_path(info.filename, archive) for info in infos]
        total = sum(info.file_size for info in infos)
        if total > max_bytes:
            raise UnsafeArchiveError(
                f"{archive}: refusing to unpack {total} bytes (limit {max_bytes})"
            )
        for info in infos:
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size > max_ratio * max(
                info.compress_size, 1
            ):
                raise UnsafeArchiveError(
                    f"{archive}: refusing {info.filename}, {info.file_size} bytes from "
                    f"{info.compress_size} compressed is beyond a ratio of {max_ratio}"
                )
        root = target.resolve()
        for info, path in zip(infos, paths, strict=True):
            destination = target / path
            if not destination.resolve().is_relative_to(root):
                raise UnsafeArchiveError(f"{archive}: refusing member {info.filename!r}")
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source, destination.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK)


def ensure_extracted(
    meta: Metadata, members: Sequence[str] | None = None, root: Path | None = None
) -> Path:
    """The archive's contents, unpacked once per archive checksum; the folder appears only whole."""
    folder = meta.extracted(root)
    marker = folder / MARKER
    if marker.is_file() and marker.read_text().strip() == meta.sha256:
        return folder
    archive = meta.archive(root)
    if not archive.is_file():
        raise MissingArchiveError(
            f"{meta.name} archive {archive} is missing: run `make download && make generate`"
        )
    with exclusive(folder):
        if marker.is_file() and marker.read_text().strip() == meta.sha256:
            return folder
        verify(archive, meta.sha256)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        try:
            extract(archive, tmp, members)
            (tmp / MARKER).write_text(meta.sha256 + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            publish(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
