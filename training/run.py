"""Turn a composed config into a run: instantiate, fit, test the best checkpoint, save metrics."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from text_recognizer.errors import ConfigError, TextRecognizerError
from text_recognizer.io import atomic_path
from text_recognizer.model.errors import NonFiniteLossError
from text_recognizer.spec import InferenceSpec
from text_recognizer.tokenizer import Tokenizer
from training import precision


def build(
    cfg: DictConfig, run_dir: Path
) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """Everything a run needs, from the config alone."""
    datamodule = _instantiate("datamodule", cfg.datamodule)
    network_cfg = network_config(cfg.network, datamodule.tokenizer, datamodule.max_output_length)
    network = _instantiate("network", network_cfg)
    lr_scheduler = (
        _instantiate("lr_scheduler", cfg.lr_scheduler) if cfg.get("lr_scheduler") else None
    )
    model = _instantiate(
        "model",
        cfg.model,
        network=network,
        optimizer=_instantiate("optimizer", cfg.optimizer),
        lr_scheduler=lr_scheduler,
        tokenizer=datamodule.tokenizer,
        inference=InferenceSpec.of_run(
            OmegaConf.to_container(network_cfg, resolve=True),
            OmegaConf.to_container(cfg.datamodule, resolve=True),
            datamodule,
        ),
    )
    callbacks = [
        _instantiate(f"callbacks.{k}", c) for k, c in (cfg.get("callbacks") or {}).items() if c
    ]
    logger = _instantiate("logger", cfg.logger) if cfg.get("logger") else False
    trainer = _instantiate(
        "trainer",
        cfg.trainer,
        callbacks=callbacks,
        logger=logger,
        default_root_dir=run_dir,
        precision=precision.resolve(cfg.trainer.precision, cfg.trainer.accelerator),
    )
    return datamodule, model, trainer


def network_config(node: DictConfig, tokenizer: Tokenizer, max_output_length: int) -> DictConfig:
    """The network config with what it leaves to the run filled in: the tokenizer's size and
    special indices, and the datamodule's output length (nested parts refer to these by
    interpolation). A value the config sets anyway must agree."""
    derived = {
        "num_tokens": len(tokenizer),
        "pad_index": tokenizer.pad_index,
        "start_index": tokenizer.start_index,
        "end_index": tokenizer.end_index,
        "max_output_length": max_output_length,
    }
    node = node.copy()
    with open_dict(node):
        for key, value in derived.items():
            given = node.get(key)
            if given is not None and given != value:
                raise ConfigError(
                    f"network.{key} is {given}, but the datamodule gives {value}: leave it out "
                    "of the network config, the run sets it"
                )
            node[key] = value
    return node


def _instantiate(key: str, node: DictConfig, **kwargs: Any) -> Any:
    """A value the constructor rejects, or a key it does not take, stops the run in one line
    naming its config group; any other error inside a constructor is a bug, and shows as one."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, TextRecognizerError | OSError):
            raise cause from None
        if isinstance(cause, ValueError | MisconfigurationException) or (
            isinstance(cause, TypeError) and _raised_by_the_call(cause)
        ):
            raise ConfigError(f"{key}: {cause}") from None
        raise


def _raised_by_the_call(error: TypeError) -> bool:
    """True if the TypeError came from calling the target with arguments it does not take (an
    unknown or missing key): then its traceback ends in Hydra's call, not inside the target."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "hydra" in Path(tb.tb_frame.f_code.co_filename).parts


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit, test with the best checkpoint, and write `metrics.json` into `run_dir`."""
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg, run_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"run directory: {run_dir}\nparameters: {parameters:,}")
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics: dict[str, Any] = {k: v.item() for k, v in trainer.callback_metrics.items()}
        callback = trainer.checkpoint_callback
        checkpoint = getattr(callback, "best_model_path", "") or None
        if isinstance(callback, ModelCheckpoint) and callback.best_model_score is not None:
            # The best checkpoint's value (what test reads), beside the last validation's.
            metrics[f"{callback.monitor}_best"] = callback.best_model_score.item()
        if cfg.get("test"):
            test_ckpt = checkpoint if checkpoint and not cfg.trainer.get("fast_dev_run") else None
            for result in trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt):
                metrics.update(result)
        metrics.update(
            global_step=trainer.global_step,
            epochs=trainer.current_epoch,
            parameters=parameters,
            wall_seconds=round(time.perf_counter() - started, 1),
            checkpoint=checkpoint,
        )
        if trainer.is_global_zero:
            with atomic_path(run_dir / "metrics.json") as tmp:
                tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
            if checkpoint:
                log_model_artifact(trainer, Path(checkpoint), metrics)
            summary = " ".join(
                f"{k}={metrics[k]:.4f}" for k in ("test/cer", "test/wer", "val/cer") if k in metrics
            )
            print(f"run directory: {run_dir}\n{summary}")
    except BaseException:
        _finish_wandb(trainer, exit_code=1)
        raise
    _finish_wandb(trainer, exit_code=0)
    return metrics


def objective(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value a sweep minimises (`optimized_metric`), or None outside a sweep. A run whose
    value is not finite diverged: it raises, so the sweeper records the trial as failed."""
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric: the run logged no {name!r}; it has {', '.join(sorted(metrics))}"
        )
    value = float(metrics[name])
    if not math.isfinite(value):
        raise NonFiniteLossError(f"{name} is {value}: the run diverged")
    return value


def _wandb_runs(trainer: pl.Trainer) -> list[Any]:
    """The W&B runs this trainer's loggers started (none on ranks other than 0)."""
    return [
        logger.experiment
        for logger in trainer.loggers
        if isinstance(logger, WandbLogger) and logger._experiment is not None
    ]


def log_model_artifact(trainer: pl.Trainer, checkpoint: Path, metrics: dict[str, Any]) -> None:
    """`best.ckpt` as a W&B model artifact of the run, with the run's metrics: uploaded when the
    run is online, kept in the offline run (and uploaded by `wandb sync`) when it is not."""
    import wandb

    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    for experiment in _wandb_runs(trainer):
        artifact = wandb.Artifact(f"model-{experiment.id}", type="model", metadata=numbers)
        artifact.add_file(str(checkpoint), name=checkpoint.name)
        experiment.log_artifact(artifact, aliases=["best", "latest"])


def _finish_wandb(trainer: pl.Trainer, exit_code: int) -> None:
    """Close the run's W&B runs: the next run in this process (a sweep's next trial) would
    otherwise log into this one."""
    for experiment in _wandb_runs(trainer):
        experiment.finish(exit_code=exit_code)
