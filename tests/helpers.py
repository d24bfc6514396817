"""What several test modules share: datamodules and networks built from their yaml, running
`main.py` as a user does, reading what a run wrote, and callbacks that break a run on purpose
(named by `+callbacks.<name>._target_=...`)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from text_recognizer.data import cli, registry
from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic.generate import SyntheticLinesConfig
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.network.convnext import ConvNext
from text_recognizer.network.transformer import Decoder
from text_recognizer.tokenizer import Tokenizer

ROOT = Path(__file__).parents[1]
# The tiniest run of the default experiment: 4 training batches per epoch, 2 of val and test.
TINY = [
    "datamodule.train_size=16",
    "datamodule.val_size=8",
    "datamodule.test_size=8",
    "datamodule.batch_size=4",
]


# A short real run: 32 training lines, 3 epochs, a checkpoint every 3 steps and each epoch, every
# step's loss logged. One process takes batches of 8 (4 steps an epoch); two DDP processes take
# batches of 4 each, the same 8 lines a step. In fp32, so that runs whose batches are cropped
# differently agree to float precision, not bf16's.
SHORT_RUN = [
    "trainer.precision=32-true",
    "datamodule.train_size=32",
    "datamodule.val_size=12",
    "datamodule.test_size=8",
    "trainer.max_epochs=3",
    "logger=csv",
    "trainer.log_every_n_steps=1",
    "callbacks.last_checkpoint_steps.every_n_train_steps=3",
]
SINGLE = [*SHORT_RUN, "datamodule.batch_size=8"]
DDP = [*SHORT_RUN, "datamodule.batch_size=4", "trainer=ddp"]


def from_yaml(name: str, *overrides: str, **values: Any) -> BaseDataModule:
    """Datamodule `name` as training builds it, from `text_recognizer/conf/datamodule/<name>.yaml`:
    changed by dotted `overrides` (`lines.height=32`), and `values` in place of the yaml's."""
    return registry.configured(name, overrides)(**values)


def datamodule_values(name: str, **values: Any) -> dict[str, Any]:
    """The keywords `from_yaml(name, **values)` passes to its class (for a subclass's own)."""
    return {k: v for k, v in registry.values(name).items() if k != "_target_"} | values


def synthetic_lines(**values: Any) -> SyntheticLines:
    lines = from_yaml("synthetic_lines", **values)
    assert isinstance(lines, SyntheticLines)
    return lines


def lines_config(**values: Any) -> SyntheticLinesConfig:
    """What `make generate` renders for synthetic_lines.yaml, with `values` in place of its own."""
    return synthetic_lines(**values).config


def network_node(name: str) -> DictConfig:
    """`training/conf/network/<name>.yaml` as Hydra composes it (one network may compose
    another)."""
    return compose_with(f"network={name}").network


def tiny_model(ctc_weight: float = 0.5) -> LitTransformer:
    """A LitTransformer small enough to train on 16 x 64 images in a unit test."""
    torch.manual_seed(0)
    encoder = ConvNext(8, [1, 2], [1, 1], [[2, 1], [2, 1]], stem_kernel=[4, 4], stem_stride=[4, 4])
    tokens = len(Tokenizer())
    decoder = Decoder(tokens, dim=16, depth=1, heads=2, dim_head=8, max_length=12)
    network = ConvTransformer(
        encoder, decoder, tokens, 0, 1, 2, max_output_length=12, ctc_head=True
    )
    return LitTransformer(network, partial(torch.optim.AdamW, lr=1e-3), ctc_weight=ctc_weight)


def compose_with(*overrides: str, run_dir: Path = Path("runs/test")) -> DictConfig:
    """Compose as `main.py` would, with the run directory Hydra would have made."""
    with initialize_config_dir(config_dir=str(ROOT / "training" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    OmegaConf.set_readonly(cfg.hydra.runtime, False)
    cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def main_command(*overrides: str) -> list[str]:
    return [sys.executable, "main.py", *overrides]


def main_env(data_root: Path) -> dict[str, str]:
    return {**os.environ, DATA_DIR_ENV: str(data_root), "OMP_NUM_THREADS": "1"}


def run_main(data_root: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        main_command(*overrides),
        cwd=ROOT,
        env=main_env(data_root),
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str, main: Callable[[list[str]], Any] = cli.main
) -> tuple[int, str, str]:
    """`main(ARGV)` (by default `text-recognizer-data`'s) in this process: exit code, stdout,
    stderr."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


def step_losses(run_dir: Path) -> dict[int, float]:
    """train/loss per step, from the CSV logger (needs trainer.log_every_n_steps=1); a resumed
    run's log (a later version) replaces the steps it did again."""
    losses = {}
    for path in sorted(run_dir.glob("csv/version_*/metrics.csv")):
        with path.open() as f:
            losses |= {
                int(r["step"]): float(r["train/loss"])
                for r in csv.DictReader(f)
                if r.get("train/loss")
            }
    return losses


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


class HangAt(pl.Callback):
    """Freezes a fresh (not resumed) run before training step `step` until the test kills it;
    `marker` appears when it does."""

    def __init__(self, step: int, marker: str) -> None:
        self.step = step
        self.marker = Path(marker)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step and trainer.ckpt_path is None:
            self.marker.touch()
            time.sleep(600)


class PoisonWeights(pl.Callback):
    """Makes a weight NaN at step `step`, as a diverging run would: at the start of the step
    (its loss is NaN) or at its end (after the optimizer step, before any checkpoint of it)."""

    def __init__(self, step: int, at: str) -> None:
        self.step = step
        self.at = at

    def _poison(self, trainer: pl.Trainer, pl_module: pl.LightningModule, at: str) -> None:
        if at == self.at and trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._poison(trainer, pl_module, "start")

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._poison(trainer, pl_module, "end")


class DivergeInTrial(pl.Callback):
    """Makes the weights NaN before the first step of sweep trial `trial` (Hydra's job number)
    alone, so its loss is NaN, as an absurd learning rate would make it."""

    def __init__(self, trial: int) -> None:
        self.trial = trial

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if HydraConfig.get().job.num == self.trial:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))
