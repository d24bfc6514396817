"""Train a text recognizer: `python main.py [+experiment=NAME] [key=value ...]`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

# wandb is offline by config (logger.offline); keep it quiet too.
os.environ.setdefault("WANDB_SILENT", "true")


@hydra.main(version_base="1.3", config_path="training/conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from text_recognizer.model.errors import TrainingError
    from training.run import run

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (TrainingError, FileNotFoundError, NotADirectoryError) as error:
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
