"""Train a text recognizer: `python main.py [+experiment=NAME] [key=value ...]`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# wandb is offline by config (logger.offline); keep it quiet too.
os.environ.setdefault("WANDB_SILENT", "true")


def _resumed_run(ckpt_path: str | None) -> Path | None:
    path = Path(ckpt_path) if ckpt_path else None
    return path.parent.parent if path and path.parent.name == "checkpoints" else None


def resume_dir(ckpt_path: str | None, fresh: str) -> str:
    """The run directory: a run resumed from `<run>/checkpoints/*.ckpt` goes on in `<run>`, so
    its best checkpoint, logs and metrics carry on; any other run gets `fresh`."""
    run = _resumed_run(ckpt_path)
    return str(run) if run else fresh


def resume_subdir(ckpt_path: str | None, resumed: str, fresh: str) -> str:
    """Where Hydra records the config: a resumed run keeps the first one's `.hydra` intact."""
    return resumed if _resumed_run(ckpt_path) else fresh


OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)
OmegaConf.register_new_resolver("resume_subdir", resume_subdir, replace=True)


@hydra.main(version_base="1.3", config_path="training/conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the sweep's objective (`optimized_metric`), which is how Optuna sees it."""
    from text_recognizer.errors import REPORTED
    from training.run import objective, run

    hydra_cfg = HydraConfig.get()
    try:
        return objective(run(cfg, Path(cfg.paths.output_dir)), cfg.get("optimized_metric"))
    except REPORTED as error:
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        print(f"error: {error}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN and cfg.get("optimized_metric"):
            raise  # the sweeper tells Optuna the trial failed and goes on with the next
        sys.exit(1)


if __name__ == "__main__":
    main()
