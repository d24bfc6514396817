"""Checkpoints are written whole or not at all, and one that cannot be read stops a resume with
one line, touching nothing."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY, run_main

from training.checkpoint_io import AtomicCheckpointIO, CorruptCheckpointError


def checkpoint(step: int) -> dict[str, object]:
    return {"global_step": step, "state_dict": {"w": torch.full((1000,), float(step))}}


def test_a_write_cut_short_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(checkpoint(1), path)
    real_save = torch.save

    def cut_short(obj: object, f: object) -> None:
        real_save(obj, f)
        f.truncate(100)  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", cut_short)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint(checkpoint(2), path)
    assert io.load_checkpoint(path)["global_step"] == 1
    assert not list(path.parent.glob(".last.ckpt.*.tmp"))  # an error cleans up after itself
    monkeypatch.setattr(torch, "save", real_save)
    (path.parent / ".last.ckpt.k1ll3d.tmp").write_bytes(b"what a kill leaves")
    io.save_checkpoint(checkpoint(3), path)
    assert io.load_checkpoint(path)["global_step"] == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


SAVING = """
import itertools, sys, torch
from training.checkpoint_io import AtomicCheckpointIO
io = AtomicCheckpointIO()
for step in itertools.count():
    weights = torch.full((2_000_000,), float(step))
    io.save_checkpoint({"global_step": step, "w": weights}, sys.argv[1])
    print(step, flush=True)
"""


@pytest.mark.slow
def test_a_checkpoint_survives_sigkill_at_any_moment(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-c", SAVING, str(path)],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "0"  # one whole checkpoint exists
    time.sleep(random.uniform(0, 1))  # 8 MB writes, back to back: most likely mid-write
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = torch.load(path, weights_only=True)
    assert saved["w"].shape == (2_000_000,) and bool((saved["w"] == saved["global_step"]).all())


@pytest.mark.parametrize("damage", ["truncated", "garbage", "folder"])
def test_a_checkpoint_that_cannot_be_read_is_named(tmp_path: Path, damage: str) -> None:
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint(checkpoint(1), path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:2000])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint" * 100)
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(CorruptCheckpointError) as error:
        io.load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"checkpoint {path} cannot be read (") and "\n" not in message
    assert message.endswith("resume from another checkpoint, or start afresh without ckpt_path")


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"checkpoint {tmp_path / 'x.ckpt'} does not exist"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "x.ckpt")


@pytest.mark.slow
def test_resuming_from_a_damaged_checkpoint_stops_in_one_line_touching_nothing(
    shared_data_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(b"\x80\x02garbage")
    result = run_main(shared_data_root, *TINY, f"ckpt_path={last}")
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: checkpoint {last} cannot be read (")
    assert "Traceback" not in result.stderr
    assert last.read_bytes() == b"\x80\x02garbage"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / ".hydra" / "config.yaml").exists()  # the first run's would be kept
