"""Killing a data build or a download at any moment never leaves a file that a later run takes
as complete; two processes building the same thing do not both build it; a data root that is
a file, read-only or damaged stops the data commands with one line."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest
from fake_archives import serve, sha256, write_metadata
from helpers import current_umask, lines_config, run_cli

from text_recognizer.data.download import download, load_metadata
from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic.generate import SyntheticLinesConfig, generate, is_complete

ROOT = Path(__file__).parents[1]


def config(train_size: int) -> SyntheticLinesConfig:
    return lines_config(train_size=train_size, val_size=4, test_size=4)


def start(code: str, data_root: Path) -> subprocess.Popen[str]:
    """Python `code` in its own process group (its pool workers die with it)."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, DATA_DIR_ENV: str(data_root), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def generating(train_size: int) -> str:
    return (
        "from text_recognizer.data.registry import configured; "
        "from text_recognizer.data.synthetic.generate import generate; "
        f"lines = configured('synthetic_lines')(train_size={train_size}, val_size=4, test_size=4); "
        "generate(lines.config, workers=1)"
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, process.communicate()[0][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def kill(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_killed_generation_leaves_nothing_complete_and_is_redone(data_root: Path) -> None:
    killed = config(train_size=300)
    path = killed.path(data_root)
    process = start(generating(300), data_root)
    wait_for(lambda: any(path.parent.glob(f".{path.name}.*.tmp")), process)
    time.sleep(random.uniform(0, 1.5))  # somewhere in the rendering
    kill(process)
    assert not path.exists() and not is_complete(path, killed)
    assert list(path.parent.glob(f".{path.name}.*.tmp"))  # what the kill left behind
    assert generate(killed, data_root, workers=1) == path
    assert is_complete(path, killed)
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # readable by other users
    assert not list(path.parent.glob("*.tmp"))  # removed under the lock by the next build


@pytest.mark.slow
def test_two_processes_generating_at_once_build_it_once(data_root: Path) -> None:
    processes = [start(generating(60), data_root) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum(output.count("wrote 68 lines") for output in outputs) == 1
    assert is_complete(config(60).path(data_root), config(60))


def downloading(name: str) -> str:
    return (
        "from text_recognizer.data.download import download, load_metadata; "
        f"print('fetched' if download(load_metadata({name!r})) else 'present')"
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    served = tmp_path / "served"
    served.mkdir()
    path = served / "big.zip"
    path.write_bytes(random.Random(0).randbytes(2 << 20))
    return path


def test_a_killed_download_leaves_no_archive_and_is_fetched_again(
    data_root: Path, archive: Path
) -> None:
    with serve(archive.parent, delay=0.05) as slow:
        write_metadata(data_root, "big", f"{slow.url}/big.zip", sha256(archive))
        target = load_metadata("big").archive()
        process = start(downloading("big"), data_root)
        wait_for(lambda: any(p.stat().st_size for p in target.parent.glob(".big.zip.*")), process)
        time.sleep(random.uniform(0, 0.5))
        kill(process)
    assert not target.exists()
    with serve(archive.parent) as fast:
        write_metadata(data_root, "big", f"{fast.url}/big.zip", sha256(archive))
        assert download(load_metadata("big")) is True
    assert sha256(target) == sha256(archive)
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.zip", "big.zip.lock"]


def test_two_processes_downloading_at_once_fetch_it_once(data_root: Path, archive: Path) -> None:
    with serve(archive.parent, delay=0.01) as server:
        write_metadata(data_root, "big", f"{server.url}/big.zip", sha256(archive))
        processes = [start(downloading("big"), data_root) for _ in range(2)]
        outputs = sorted(p.communicate(timeout=120)[0].split()[-1] for p in processes)
    assert outputs == ["fetched", "present"]
    assert server.requests == ["/big.zip"]


@pytest.mark.parametrize(
    "argv", [("generate", "synthetic_lines"), ("info",), ("download", "emnist")]
)
def test_a_data_root_that_is_a_file_is_named(
    argv: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "data.txt"
    root.write_text("not a folder")
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    code, _, err = run_cli(capsys, *argv)
    assert code == 1
    assert err == f"error: data root {root} is a file; point {DATA_DIR_ENV} at a directory\n"
    assert root.read_text() == "not a folder"


def permissions_apply() -> bool:
    """False for root (with CAP_DAC_OVERRIDE), which writes into read-only folders anyway."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o555)
        try:
            Path(folder, "probe").touch()
        except PermissionError:
            return True
        finally:
            os.chmod(folder, 0o755)
    return False


@pytest.mark.skipif(not permissions_apply(), reason="this user writes into read-only folders")
@pytest.mark.usefixtures("tiny_registry")
def test_a_read_only_data_root_is_named_and_still_serves_what_it_has(
    data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_root.mkdir()
    data_root.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "generate", "synthetic_lines")
        assert code == 1
        assert err.startswith(f"error: cannot write {data_root / 'processed'} (Permission denied)")
        assert err.count("\n") == 1 and DATA_DIR_ENV in err
        data_root.chmod(0o755)
        assert run_cli(capsys, "generate", "synthetic_lines")[0] == 0
        for folder in (data_root, *data_root.rglob("*")):
            if folder.is_dir():
                folder.chmod(0o555)
        code, out, err = run_cli(capsys, "info")
        assert code == 0, err
        assert "SyntheticLines" in out
    finally:
        for folder in (data_root, *data_root.rglob("*")):
            if folder.is_dir():
                folder.chmod(0o755)


@pytest.mark.usefixtures("tiny_registry")
def test_a_damaged_data_file_is_named_and_left_alone(
    data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "generate", "synthetic_lines")[0] == 0
    (path,) = (data_root / "processed" / "synthetic_lines").glob("*.h5")
    with h5py.File(path) as f:  # damage the first chunk of training images, not the metadata
        chunk = f["train"]["images"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset : chunk.byte_offset + chunk.size] = b"\xff" * chunk.size
    path.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "info")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: {path} cannot be read (")
    assert err.endswith("delete it and run `text-recognizer-data generate` to build it again\n")
    assert path.read_bytes() == bytes(data)
