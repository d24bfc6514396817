"""`trainer=ddp`: two CPU processes (gloo) launched from `main.py` under Hydra. Data is built
once, only rank 0 writes, validation metrics cover the whole split across both processes, and
the result matches one process taking the same 8 lines a step."""

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from helpers import DDP, compose_with, metrics, run_main, tiny_model
from pytorch_lightning.loggers import WandbLogger

from text_recognizer.data.paths import DATA_DIR_ENV
from training.callbacks.log_predictions import LogPredictions
from training.run import build


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The run directory, its own (empty at first) data root, and what the run printed."""
    folder = tmp_path_factory.mktemp("ddp")
    run_dir, data_root = folder / "run", folder / "data"
    result = run_main(data_root, *DDP, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, data_root, result.stdout + result.stderr


@pytest.mark.slow
def test_data_is_built_once_and_only_rank_zero_writes(ddp_run: tuple[Path, Path, str]) -> None:
    run_dir, _, output = ddp_run
    assert output.count("wrote 52 lines to") == 1
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in output
    written = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert written == [
        ".hydra/config.yaml",
        ".hydra/hydra.yaml",
        ".hydra/overrides.yaml",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "csv/version_0/metrics.csv",
        "main.log",
        "metrics.json",
        "train_ddp_process_1.log",  # Hydra's log of rank 1's own process
    ]


@pytest.mark.slow
def test_validation_metrics_cover_the_whole_split(
    ddp_run: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One process evaluating the DDP run's final weights on all 12 validation lines gets what
    the two processes reported together (their shards: 2 batches of 4 and 1)."""
    run_dir, data_root, _ = ddp_run
    monkeypatch.setenv(DATA_DIR_ENV, str(data_root))
    single = [o for o in DDP if o != "trainer=ddp"]
    datamodule, model, _ = build(compose_with(*single, run_dir=tmp_path), tmp_path)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    last = run_dir / "checkpoints" / "last.ckpt"
    (evaluated,) = trainer.validate(model, datamodule=datamodule, ckpt_path=last, verbose=False)
    reported = metrics(run_dir)
    for key in ("val/loss", "val/cer", "val/wer"):
        assert evaluated[key] == pytest.approx(reported[key], rel=1e-5), key


@pytest.mark.slow
def test_the_result_matches_one_process_with_the_same_batch(
    ddp_run: tuple[Path, Path, str], reference_run: Path
) -> None:
    ddp, single = metrics(ddp_run[0]), metrics(reference_run)
    assert ddp["global_step"] == single["global_step"] == 12
    assert ddp["lr-AdamW"] == pytest.approx(single["lr-AdamW"])
    # Same lines each epoch, grouped into batches differently: close, not equal.
    assert ddp["val/loss"] == pytest.approx(single["val/loss"], rel=0.02)


class _Wandb(WandbLogger):
    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []

    def log_image(self, **kwargs: Any) -> None:
        self.images.append(kwargs)


@pytest.mark.parametrize("rank_zero", [True, False])
def test_prediction_images_are_logged_by_rank_zero_only(rank_zero: bool) -> None:
    logger = _Wandb()
    trainer: Any = type(
        "Trainer",
        (),
        {
            "num_val_batches": [1],
            "is_global_zero": rank_zero,
            "sanity_checking": False,
            "loggers": [logger],
            "global_step": 3,
        },
    )()
    module = tiny_model()
    callback = LogPredictions(num_samples=2)
    images, targets = torch.rand(2, 1, 32, 64), torch.zeros(2, 5, dtype=torch.long)
    callback.on_validation_batch_end(
        trainer, module, {"predictions": ["a", "b"]}, (images, targets), 0
    )
    callback.on_validation_epoch_end(trainer, module)
    assert len(logger.images) == (1 if rank_zero else 0)
