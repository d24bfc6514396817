"""`python main.py` end to end on a tiny rendered dataset, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TINY = [
    "datamodule.train_size=16",
    "datamodule.val_size=8",
    "datamodule.test_size=8",
    "datamodule.batch_size=4",
]


def run_main(data_root: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEXT_RECOGNIZER_DATA_DIR": str(data_root)}
    return subprocess.run(
        [sys.executable, "main.py", *TINY, f"hydra.run.dir={run_dir}", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_fast_dev_run_of_the_default_experiment(data_root: Path, tmp_path: Path) -> None:
    result = run_main(
        data_root, tmp_path / "run", "+experiment=synthetic_lines", "+debug=fast_dev_run"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test/cer"] >= 0 and metrics["global_step"] == 1


@pytest.mark.slow
def test_short_run_writes_checkpoints_and_metrics(data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main(data_root, run_dir, "+debug=limit_batches")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/cer", "test/wer", "val/cer", "global_step", "wall_seconds", "checkpoint"):
        assert key in metrics, key
    assert Path(metrics["checkpoint"]) == run_dir / "checkpoints" / "best.ckpt"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert f"run directory: {run_dir}" in result.stdout
    assert "test/cer=" in result.stdout


def test_a_missing_font_folder_stops_in_one_line(data_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run_main(data_root, tmp_path / "run", f"datamodule.font_folders=[{missing}]")
    assert result.returncode != 0
    assert f"error: font folder {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
