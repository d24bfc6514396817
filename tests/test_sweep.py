"""`python main.py -m hparams_search=synthetic_lines_optuna`: a real Optuna sweep (the
hydra-optuna-sweeper plugin, TPE) of tiny runs, one of which diverges."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TINY_LINES
from helpers import ROOT, main_command, main_env

from training.sweep import BEST, TRIALS

PARAMS = [
    "optimizer.lr",
    "lr_scheduler.warmup_fraction",
    "model.ctc_weight",
    "network.encoder.dim",
    "datamodule.batch_size",
]
TINY_TRIAL = [
    *(f"datamodule.{key}={value}" for key, value in TINY_LINES.items()),
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "logger=csv",
    "callbacks.log_predictions=null",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def sweep(
    shared_data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Three trials; the second (job 1) diverges: its weights turn NaN before its first step."""
    folder = tmp_path_factory.mktemp("sweep") / "multirun"
    env = main_env(shared_data_root)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        main_command(
            "-m",
            "hparams_search=synthetic_lines_optuna",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={folder}",
            *TINY_TRIAL,
            "+callbacks.diverge._target_=helpers.DivergeInTrial",
            "+callbacks.diverge.trial=1",
        ),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def trials(folder: Path) -> list[dict[str, str]]:
    with (folder / TRIALS).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_the_best_parameters_are_those_of_the_best_trial_and_match_its_metrics(
    sweep: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    folder, _ = sweep
    best = yaml.safe_load((folder / BEST).read_text())
    assert sorted(best["best_params"]) == sorted(PARAMS)
    completed = [row for row in trials(folder) if row["state"] == "COMPLETE"]
    assert len(completed) == 2
    for row in completed:  # what each trial returned to Optuna is its run's metrics.json
        written = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert float(row["value"]) == written["val/cer_best"]
        assert written["val/cer_best"] <= written["val/cer"] + 1e-9
    winner = min(completed, key=lambda row: float(row["value"]))
    assert best["best_value"] == float(winner["value"])
    assert best["best_params"]["network.encoder.dim"] == int(winner["network.encoder.dim"])
    assert best["best_params"]["optimizer.lr"] == pytest.approx(float(winner["optimizer.lr"]))
    config = yaml.safe_load((Path(winner["run_dir"]) / ".hydra" / "config.yaml").read_text())
    assert config["optimizer"]["lr"] == best["best_params"]["optimizer.lr"]
    assert config["datamodule"]["batch_size"] == best["best_params"]["datamodule.batch_size"]


@pytest.mark.slow
def test_a_diverging_trial_is_told_to_optuna_as_failed_and_the_sweep_goes_on(
    sweep: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    folder, result = sweep
    rows = trials(folder)
    assert [row["state"] for row in rows] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert rows[1]["value"] == "" and "loss is nan at step 0" in rows[1]["error"]
    # The sweeper's own line, logged as it tells Optuna the trial failed.
    assert "Failed experiment: loss is nan at step 0" in result.stdout + result.stderr
    assert not (folder / "1" / "metrics.json").exists()
    assert (folder / "2" / "metrics.json").is_file()  # the trial after it ran
    assert len({row["optimizer.lr"] for row in rows}) == 3  # TPE proposed three trials
