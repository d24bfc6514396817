"""Log a few validation images with their target and predicted text each epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from text_recognizer.model.lit_transformer import LitTransformer


class LogPredictions(pl.Callback):
    """Keeps one validation batch's predictions and logs them as captioned images (as read:
    dark ink on light paper). Under DDP, rank 0 alone keeps and logs them."""

    def __init__(self, num_samples: int = 8) -> None:
        self.num_samples = num_samples
        self._batch: tuple[torch.Tensor, list[str], list[str]] | None = None

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        # Validation batches are grouped by line width: the middle one shows typical lines.
        middle = int(trainer.num_val_batches[dataloader_idx]) // 2
        if (
            batch_idx != middle
            or not trainer.is_global_zero
            or not isinstance(pl_module, LitTransformer)
        ):
            return
        images, targets = batch
        n = self.num_samples
        truths = pl_module.tokenizer.decode_batch(targets[:n])
        self._batch = (images[:n].detach().cpu(), truths, outputs["predictions"][:n])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._batch is None or trainer.sanity_checking:
            return
        images, truths, predictions = self._batch
        self._batch = None
        captions = [
            f"target: {t}\npredicted: {p}" for t, p in zip(truths, predictions, strict=True)
        ]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="val/predictions",
                    images=[((1.0 - image[0]) * 255).byte().numpy() for image in images],
                    caption=captions,
                    step=trainer.global_step,
                )
