"""Models by reference: a path, an https zip with its sha256 (served on loopback), the Hugging
Face Hub (from a cache laid out as the Hub documents it, offline, and a loopback stand-in for
the Hub's not-found answers) and W&B (a fake `wandb.Api` that records its calls: the real
client cannot run without a server). Every bad reference is one line."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import huggingface_hub.constants
import pytest
import wandb
from fake_archives import closed_port, serve, sha256
from helpers import run_cli
from PIL import Image
from tiny_recognizer import Tiny

from text_recognizer import cli
from text_recognizer.data.download import ChecksumError, DownloadError, UnsafeArchiveError
from text_recognizer.inference import TextRecognizer, load_recognizer
from text_recognizer.inference.models.references import CACHE_ENV, ModelReferenceError, resolve

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def files_under(root: Path) -> list[str]:
    """Every file but the (empty) locks a download holds while it writes."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".lock"
    )


def model_zip(folder: Path, tiny: Tiny, member: str = "tiny/best.ckpt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(tiny.checkpoint, member)
    return path


def test_an_https_zip_is_verified_cached_and_then_used_with_the_server_stopped(
    tiny_checkpoint: Tiny, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = model_zip(tmp_path / "served", tiny_checkpoint)
    expected = load_recognizer(tiny_checkpoint.checkpoint).predict(tiny_checkpoint.images[0])
    with serve(archive.parent) as server:
        reference = f"{server.url}/model.zip#sha256={sha256(archive)}"
        recognizer = load_recognizer(reference)
        assert server.requests == ["/model.zip"]
    assert recognizer.predict(tiny_checkpoint.images[0]) == expected
    path = resolve(reference)  # the server is gone: the cached, verified copy is used
    assert path.is_relative_to(cache) and path.name == "best.ckpt"
    assert hashlib.sha256(path.read_bytes()).digest() == (
        hashlib.sha256(tiny_checkpoint.checkpoint.read_bytes()).digest()
    )
    assert not [name for name in files_under(cache) if name.endswith(".tmp")]
    image = tmp_path / "line.png"
    Image.fromarray(tiny_checkpoint.images[0]).save(image)
    capsys.readouterr()
    code, out, err = run_cli(capsys, "predict", "--model", reference, str(image), main=cli.main)
    assert code == 0, err
    assert out == f"{image}\t{expected}\n"


def test_a_sha256_mismatch_removes_the_download(
    tiny_checkpoint: Tiny, tmp_path: Path, cache: Path
) -> None:
    archive = model_zip(tmp_path / "served", tiny_checkpoint)
    wrong = "0" * 64
    mismatch = f"sha256 {sha256(archive)}, expected {wrong}"
    with serve(archive.parent) as server, pytest.raises(ChecksumError, match=mismatch):
        resolve(f"{server.url}/model.zip#sha256={wrong}")
    assert files_under(cache) == []


def test_an_archive_with_members_outside_its_folder_is_refused(
    tiny_checkpoint: Tiny, tmp_path: Path, cache: Path
) -> None:
    archive = model_zip(tmp_path / "served", tiny_checkpoint, member="../../evil.ckpt")
    with serve(archive.parent) as server, pytest.raises(UnsafeArchiveError, match="escapes"):
        resolve(f"{server.url}/model.zip#sha256={sha256(archive)}")
    assert not [name for name in files_under(cache) if "extracted" in name]
    assert not list(tmp_path.rglob("evil.ckpt"))


def test_an_uncached_reference_without_a_network_fails_in_one_line(cache: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/model.zip"
    with pytest.raises(DownloadError) as error:
        resolve(f"{url}#sha256={'a' * 64}")
    assert url in str(error.value) and "\n" not in str(error.value)
    assert files_under(cache) == []


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("s3://bucket/model.zip", "unknown scheme 's3'"),
        ("https://example.org/model.zip", "end the URL with #sha256="),
        ("https://example.org/model.zip#sha256=abc", "end the URL with #sha256="),
        (f"https://example.org/model.tar#sha256={'a' * 64}", "must name a .zip"),
        ("wandb:project/model:latest", "expected wandb:<entity>/<project>/<artifact>:<alias>"),
        ("hf:just-a-name", "expected hf:<user>/<repo>"),
    ],
)
def test_a_malformed_reference_is_named_in_one_line(reference: str, message: str) -> None:
    with pytest.raises(ModelReferenceError, match=message) as error:
        resolve(reference)
    assert str(error.value).startswith(f"{reference}: ") and "\n" not in str(error.value)


def test_the_cli_reports_a_bad_reference_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "predict", "--model", "s3://bucket/model.zip", "x.png", main=cli.main
    )
    assert code == 1 and out == ""
    assert err.startswith("error: s3://bucket/model.zip: unknown scheme 's3'")
    assert err.count("\n") == 1


def hub_cache(cache: Path, repo: str, checkpoint: Path) -> Path:
    """`<cache>/models--<user>--<repo>` as huggingface_hub lays it out: the file under
    `blobs/` by its sha256 (an LFS file), a snapshot of the commit linking to it, and
    `refs/main` naming the commit."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    blob = folder / "blobs" / sha256(checkpoint)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(checkpoint.read_bytes())
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "best.ckpt").symlink_to(Path("..", "..", "blobs", blob.name))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, also for a huggingface_hub imported before the variable was set."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.usefixtures("hub_offline")
def test_hf_resolves_from_the_hub_cache_offline(tiny_checkpoint: Tiny, cache: Path) -> None:
    snapshot = hub_cache(cache / "hf", "someone/tiny", tiny_checkpoint.checkpoint)
    assert resolve("hf:someone/tiny") == snapshot / "best.ckpt"
    assert resolve(f"hf:someone/tiny@{COMMIT}") == snapshot / "best.ckpt"
    recognizer = load_recognizer("hf:someone/tiny")
    assert isinstance(recognizer, TextRecognizer)
    expected = load_recognizer(tiny_checkpoint.checkpoint)
    image = tiny_checkpoint.images[1]
    assert recognizer.predict(image) == expected.predict(image)


@pytest.mark.usefixtures("hub_offline")
def test_hf_a_repo_or_revision_not_cached_offline_is_one_line(
    tiny_checkpoint: Tiny, cache: Path
) -> None:
    hub_cache(cache / "hf", "someone/tiny", tiny_checkpoint.checkpoint)
    for reference in ("hf:someone/other", "hf:someone/tiny@v2"):
        with pytest.raises(ModelReferenceError, match="not in the cache") as error:
            resolve(reference)
        assert str(error.value).startswith(f"{reference}: ") and "\n" not in str(error.value)


class FakeHub(http.server.BaseHTTPRequestHandler):
    """The Hub's answers for a repository or a revision it does not have (the error code
    header is what huggingface_hub reads)."""

    def do_GET(self) -> None:
        code = "RevisionNotFound" if "/revision/nope" in self.path else "RepoNotFound"
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"error": code}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("hf:someone/missing", "no such repository on the Hub"),
        ("hf:someone/tiny@nope", "the repository has no revision 'nope'"),
    ],
)
def test_hf_a_repo_or_revision_the_hub_does_not_have_is_one_line(
    monkeypatch: pytest.MonkeyPatch, reference: str, message: str
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    monkeypatch.setattr(
        huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}"
    )
    try:
        with pytest.raises(ModelReferenceError) as error:
            resolve(reference)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert str(error.value).startswith(f"{reference}: {message}")
    assert "\n" not in str(error.value)


class FakeApi:
    """`wandb.Api` for the calls `resolve` makes; `published` maps `entity/project/name:alias`
    to the file its artifact holds. Every call is recorded in `calls`."""

    calls: ClassVar[list[tuple[Any, ...]]] = []
    published: ClassVar[dict[str, Path]] = {}

    def __init__(self) -> None:
        self.calls.append(("Api",))

    def artifact(self, name: str, type: str | None = None) -> FakeArtifact:
        self.calls.append(("artifact", name))
        if name not in self.published:
            raise wandb.errors.CommError(f"artifact '{name}' not found\nmore detail")
        return FakeArtifact(self.published[name], self.calls)


class FakeArtifact:
    digest = "d41d8cd98f00b204e9800998ecf8427e"

    def __init__(self, file: Path, calls: list[tuple[Any, ...]]) -> None:
        self.file, self.calls = file, calls

    def download(self, root: str) -> str:
        self.calls.append(("download", root))
        (Path(root) / self.file.name).write_bytes(self.file.read_bytes())
        return root


@pytest.fixture
def fake_wandb(monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Tiny) -> type[FakeApi]:
    api = type("Api", (FakeApi,), {"calls": [], "published": {}})
    api.published = {
        "me/hwr/model-abc:v3": tiny_checkpoint.checkpoint,
        "me/hwr/model-abc:latest": tiny_checkpoint.checkpoint,
    }
    monkeypatch.setattr(wandb, "Api", api)
    return api


def test_wandb_downloads_through_the_api_once_per_version(
    fake_wandb: type[FakeApi], cache: Path, tiny_checkpoint: Tiny
) -> None:
    path = resolve("wandb:me/hwr/model-abc:v3")
    assert path == cache / "wandb" / "me" / "hwr" / "model-abc" / "v3" / "tiny.ckpt"
    assert path.read_bytes() == tiny_checkpoint.checkpoint.read_bytes()
    assert [c[:2] for c in fake_wandb.calls[:2]] == [("Api",), ("artifact", "me/hwr/model-abc:v3")]
    assert fake_wandb.calls[2][0] == "download"
    assert Path(fake_wandb.calls[2][1]).parent == path.parent.parent  # a temporary sibling
    calls = len(fake_wandb.calls)
    assert resolve("wandb:me/hwr/model-abc:v3") == path  # a version never moves: no call
    assert len(fake_wandb.calls) == calls
    assert isinstance(load_recognizer("wandb:me/hwr/model-abc:v3"), TextRecognizer)


def test_wandb_a_moving_alias_is_asked_again_and_the_cache_serves_when_unreachable(
    fake_wandb: type[FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    path = resolve("wandb:me/hwr/model-abc:latest")
    assert resolve("wandb:me/hwr/model-abc:latest") == path
    assert [c for c in fake_wandb.calls if c[0] == "artifact"] == [
        ("artifact", "me/hwr/model-abc:latest")
    ] * 2
    fake_wandb.published.clear()  # W&B now answers that it does not know it
    assert resolve("wandb:me/hwr/model-abc:latest") == path
    assert "using the cached copy" in capsys.readouterr().err


def test_wandb_a_missing_alias_is_one_line(fake_wandb: type[FakeApi], cache: Path) -> None:
    reference = "wandb:me/hwr/model-abc:v9"
    with pytest.raises(ModelReferenceError, match="not found") as error:
        resolve(reference)
    message = str(error.value)
    assert message.startswith(f"{reference}: artifact 'me/hwr/model-abc:v9' not found")
    assert "\n" not in message
    assert not (cache / "wandb" / "me" / "hwr" / "model-abc" / "v9").exists()


def test_a_local_folder_holding_a_checkpoint_resolves_to_it(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    os.link(tiny_checkpoint.checkpoint, folder / "best.ckpt")
    assert resolve(folder) == folder / "best.ckpt"
    assert resolve(str(tiny_checkpoint.checkpoint)) == tiny_checkpoint.checkpoint
