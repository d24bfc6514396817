"""Download, verify and unpack, against archives served from 127.0.0.1."""

import http.server
import re
import threading
import zipfile
from pathlib import Path

import pytest
from fake_archives import closed_port, serve, sha256, write_metadata
from helpers import current_umask

from text_recognizer.data.download import (
    PACKAGED_RAW,
    ChecksumError,
    DownloadError,
    MissingArchiveError,
    UnsafeArchiveError,
    check_url,
    download,
    ensure_extracted,
    extract,
    load_metadata,
)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    served = tmp_path / "served"
    served.mkdir()
    path = served / "small.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("small/a.txt", "alpha\n")
        zf.writestr("small/sub/b.txt", "beta\n")
    return path


def files_under(root: Path) -> list[Path]:
    """Besides the metadata and the (empty) locks that downloads hold while writing."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".toml", ".lock"))


def test_download_verify_extract_and_skip_when_present(data_root: Path, archive: Path) -> None:
    with serve(archive.parent) as server:
        write_metadata(data_root, "small", f"{server.url}/small.zip", sha256(archive))
        meta = load_metadata("small")
        assert download(meta) is True
        assert download(meta) is False  # present and valid: not fetched again
        assert server.requests == ["/small.zip"]
    assert meta.archive() == data_root / "downloaded" / "small" / "small.zip"
    folder = ensure_extracted(meta)
    assert (folder / "small" / "sub" / "b.txt").read_text() == "beta\n"
    umask = current_umask()
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # not private to its owner
    assert meta.archive().stat().st_mode & 0o777 == 0o666 & ~umask
    assert ensure_extracted(meta) == folder  # unpacked once per archive checksum


def test_a_checksum_mismatch_removes_the_file_and_says_expected_and_actual(
    data_root: Path, archive: Path
) -> None:
    wrong = "0" * 64
    with serve(archive.parent) as server:
        write_metadata(data_root, "small", f"{server.url}/small.zip", wrong)
        with pytest.raises(ChecksumError, match=f"sha256 {sha256(archive)}, expected {wrong}"):
            download(load_metadata("small"))
    assert files_under(data_root) == []


def test_a_wrong_file_placed_by_hand_is_replaced(data_root: Path, archive: Path) -> None:
    with serve(archive.parent) as server:
        write_metadata(data_root, "small", f"{server.url}/small.zip", sha256(archive))
        meta = load_metadata("small")
        meta.archive().parent.mkdir(parents=True)
        meta.archive().write_bytes(b"truncated")
        assert download(meta) is True
    assert sha256(meta.archive()) == sha256(archive)


def test_an_unreachable_host_fails_in_one_line_and_leaves_nothing(data_root: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/iamdb.zip"
    write_metadata(data_root, "iam", url, "0" * 64)
    with pytest.raises(DownloadError) as error:
        download(load_metadata("iam"))
    message = str(error.value)
    assert url in message and "by hand" in message and "\n" not in message
    assert str(data_root / "downloaded" / "iam" / "iamdb.zip") in message
    assert files_under(data_root) == []


def test_only_https_or_loopback_http() -> None:
    check_url("https://example.org/a.zip")
    check_url("http://127.0.0.1:8000/a.zip")
    check_url("http://[::1]:8000/a.zip")
    for url in ("http://example.org/a.zip", "ftp://example.org/a.zip", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="only https"):
            check_url(url)


def test_a_redirect_off_loopback_is_refused(data_root: Path, tmp_path: Path) -> None:
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://example.org/a.zip")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        write_metadata(data_root, "small", f"http://127.0.0.1:{server.server_port}/a", "0" * 64)
        with pytest.raises(ValueError, match=re.escape("refusing to download http://example.org")):
            download(load_metadata("small"))
    finally:
        thread.join(timeout=5)
        server.server_close()
    assert files_under(data_root) == []


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "c:/x"])
def test_a_member_escaping_the_folder_is_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr(zipfile.ZipInfo(member), "pwned")
    target = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError, match="escapes the folder"):
        extract(archive, target)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    assert not (tmp_path / "evil.txt").exists()


def test_an_absurd_unpacked_size_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(4 << 20))  # 4 MiB of zeros deflate to a few KiB
    with pytest.raises(UnsafeArchiveError, match="ratio"):
        extract(archive, tmp_path / "out")
    with pytest.raises(UnsafeArchiveError, match="limit"):
        extract(archive, tmp_path / "out", max_bytes=1 << 20, max_ratio=10_000)
    assert not (tmp_path / "out").exists()


def test_a_missing_archive_says_what_to_run(data_root: Path) -> None:
    with pytest.raises(MissingArchiveError, match=r"make download && make generate"):
        ensure_extracted(load_metadata("iam"))


def test_the_packaged_metadata_is_used_when_the_data_root_has_none(data_root: Path) -> None:
    iam, emnist = load_metadata("iam"), load_metadata("emnist")
    assert iam.source == PACKAGED_RAW / "iam" / "metadata.toml"
    assert iam.filename == "iamdb.zip" and len(iam.sha256) == 64 and len(iam.test_ids) > 200
    assert emnist.filename == "matlab.zip" and emnist.url.startswith("https://")
    with pytest.raises(FileNotFoundError, match="no metadata for dataset 'nope'"):
        load_metadata("nope")
