"""Log how many lines the training pages hold, so a curriculum's stages show in the curves."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from text_recognizer.tokenizer import Tokenizer


class LogPageLines(pl.Callback):
    """`train/lines` (the batch's mean lines a page) and `train/most_lines`, counted from the
    targets' newline tokens: what the model was shown, whatever schedule chose it."""

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: tuple[Tensor, Tensor],
        batch_idx: int,
    ) -> None:
        tokenizer = pl_module.tokenizer
        assert isinstance(tokenizer, Tokenizer)
        newlines: Tensor = batch[1] == tokenizer.newline_index
        lines = newlines.sum(1).float() + 1
        pl_module.log_dict({"train/lines": lines.mean(), "train/most_lines": lines.max()})
