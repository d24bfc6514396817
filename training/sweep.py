"""The table of a sweep's trials, beside the best parameters the Optuna sweeper writes.

The sweeper keeps its study in memory (optuna 2.10, which hydra-optuna-sweeper requires, cannot
use SQLAlchemy 2 for a database) and writes only `optimization_results.yaml`, the best
parameters and value. This Hydra callback adds `trials.csv`, one row per trial as it ends, with
the state the sweeper reports to Optuna: COMPLETE when the run returned its objective, FAIL when
it raised (a diverged loss, a value the run could not use).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from text_recognizer.io import atomic_path

TRIALS = "trials.csv"
BEST = "optimization_results.yaml"  # the sweeper's own file name


class TrialTable(Callback):
    """Rewrites `<sweep dir>/trials.csv` whole after every trial."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra = job_return.hydra_cfg.hydra if job_return.hydra_cfg else config.hydra
        path = Path(hydra.sweep.dir) / TRIALS
        params = [str(key) for key in (hydra.sweeper.get("params") or {})]
        given = dict(o.split("=", 1) for o in job_return.overrides or () if "=" in o)
        failed = job_return.status != JobStatus.COMPLETED
        # `_return_value`: the property re-raises a failed job's error, which is the row's text.
        row = {
            "trial": hydra.job.num,
            "state": "FAIL" if failed else "COMPLETE",
            "value": "" if failed else job_return._return_value,
            **{key: given.get(key, "") for key in params},
            "run_dir": hydra.runtime.output_dir,
            "error": str(job_return._return_value).splitlines()[0] if failed else "",
        }
        rows = []
        if path.is_file():
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        rows.append(row)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(rows)
        with atomic_path(path) as tmp:
            tmp.write_text(text.getvalue())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        print(f"sweep: best parameters in {folder / BEST}, every trial in {folder / TRIALS}")
