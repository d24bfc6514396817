"""`python main.py` end to end on a tiny rendered dataset, as a user runs it."""

import math
from pathlib import Path

import pytest
from helpers import TINY, metrics, run_main


@pytest.mark.slow
def test_fast_dev_run_of_the_default_experiment(data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main(
        data_root,
        *TINY,
        f"hydra.run.dir={run_dir}",
        "+experiment=synthetic_lines",
        "+debug=fast_dev_run",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = metrics(run_dir)
    # One step from random weights cannot read a test line: a CER of 0 would mean the metric
    # compared the labels with themselves, or saw nothing.
    assert 0 < written["test/cer"] < math.inf and written["global_step"] == 1


@pytest.mark.slow
def test_short_run_writes_checkpoints_and_metrics(data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main(data_root, *TINY, f"hydra.run.dir={run_dir}", "+debug=limit_batches")
    assert result.returncode == 0, result.stderr[-2000:]
    written = metrics(run_dir)
    for key in ("test/cer", "test/wer", "val/cer", "global_step", "wall_seconds", "checkpoint"):
        assert key in written, key
    assert Path(written["checkpoint"]) == run_dir / "checkpoints" / "best.ckpt"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert f"run directory: {run_dir}" in result.stdout
    assert "test/cer=" in result.stdout


def test_a_missing_font_folder_stops_in_one_line(data_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run_main(
        data_root,
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"datamodule.font_folders=[{missing}]",
    )
    assert result.returncode != 0
    assert f"error: font folder {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
