"""Teacher-forced training and cached greedy decoding for the image-to-text transformer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F  # noqa: N812
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from text_recognizer.decode import BeamOptions, decode_images, searched
from text_recognizer.errors import ConfigError
from text_recognizer.model.errors import NonFiniteLossError, naming_the_batch
from text_recognizer.model.metrics import error_rates
from text_recognizer.model.transfer import transfer_weights
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.spec import CHECKPOINT_KEY, InferenceSpec
from text_recognizer.tokenizer import Tokenizer

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class LitTransformer(pl.LightningModule):
    """Cross-entropy on the next token (padding ignored), plus an optional CTC loss on the encoder.

    The CTC term aligns image columns with characters early in training, which the attention
    decoder alone finds slowly. Decoding is the decoder's, on the kv cache; a network with
    `ctc_decode_weight` lets the CTC head share each greedy choice (`text_recognizer.ctc_prefix`).
    `inference`, if given, is saved in every checkpoint so that it loads for inference alone.
    `init_from` starts the network from another checkpoint's weights (`model.init_from`).
    `beam` > 1 decodes validation and test by beam search of that width (`model.beam`).
    """

    def __init__(
        self,
        network: ConvTransformer,
        optimizer: OptimizerFactory,
        lr_scheduler: SchedulerFactory | None = None,
        tokenizer: Tokenizer | None = None,
        label_smoothing: float = 0.0,
        ctc_weight: float = 0.0,
        max_output_length: int | None = None,
        inference: InferenceSpec | None = None,
        init_from: str | None = None,
        beam: int = 1,
    ) -> None:
        super().__init__()
        if beam < 1:
            raise ConfigError(f"model: beam must be at least 1, got {beam}")
        self.beam = beam
        self.inference = inference
        self.network = network
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.tokenizer = tokenizer or Tokenizer()
        self.label_smoothing = label_smoothing
        self.ctc_weight = ctc_weight
        self.max_output_length = max_output_length
        self.val_metrics = error_rates("val/")
        self.test_metrics = error_rates("test/")
        self._batch_shape = torch.Size()
        if init_from:
            rank_zero_only(print)(transfer_weights(network, init_from, self.tokenizer).summary())

    def forward(self, images: Tensor) -> list[str]:
        return self.tokenizer.decode_batch(self.predict_tokens(images))

    def predict_tokens(self, images: Tensor) -> Tensor:
        beam = searched(BeamOptions(self.beam))
        return decode_images(self.network, images, beam=beam, max_length=self.max_output_length)

    def _losses(self, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
        # Batches are padded to the dataset's longest label; most rows end far sooner.
        targets = targets[:, : int((targets != self.tokenizer.pad_index).sum(1).max())]
        output = self.network(images, targets[:, :-1])
        pad = self.tokenizer.pad_index
        losses = {
            "ce": F.cross_entropy(
                output.logits.transpose(1, 2),
                targets[:, 1:],
                ignore_index=pad,
                label_smoothing=self.label_smoothing,
            )
        }
        if self.ctc_weight > 0 and output.ctc_logits is not None:
            losses["ctc"] = self._ctc_loss(output.ctc_logits, targets)
            losses["loss"] = losses["ce"] + self.ctc_weight * losses["ctc"]
        else:
            losses["loss"] = losses["ce"]
        return losses

    def _ctc_loss(self, ctc_logits: Tensor, targets: Tensor) -> Tensor:
        """CTC over the encoder's columns; the pad index is the blank."""
        special = (self.tokenizer.start_index, self.tokenizer.end_index, self.tokenizer.pad_index)
        keep = ~torch.isin(targets, torch.tensor(special, device=targets.device))
        labels = targets[keep]
        label_lengths = keep.sum(dim=1)
        log_probs = ctc_logits.float().log_softmax(-1).transpose(0, 1)
        input_lengths = torch.full(
            (targets.shape[0],), log_probs.shape[0], dtype=torch.long, device=targets.device
        )
        return F.ctc_loss(
            log_probs,
            labels,
            input_lengths,
            label_lengths,
            blank=self.tokenizer.pad_index,
            zero_infinity=True,
        )

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, targets = batch
        self._batch_shape = images.shape
        with naming_the_batch(images.shape, f"training step {self.global_step}"):
            losses = self._losses(images, targets)
        if not torch.isfinite(losses["loss"]):
            raise NonFiniteLossError(
                f"loss is {losses['loss'].item()} at step {self.global_step}: lower optimizer.lr "
                "or trainer.gradient_clip_val; the checkpoints saved before it are kept"
            )
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True)
        return losses["loss"]

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        with naming_the_batch(self._batch_shape, f"the backward pass of step {self.global_step}"):
            super().backward(loss, *args, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write weights that are no longer numbers over the last good checkpoint, and
        record what inference needs besides the weights (`load_recognizer` reads it)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.parameters()):
            raise NonFiniteLossError(
                f"the weights became NaN or infinite by step {self.global_step}: lower "
                "optimizer.lr or trainer.gradient_clip_val; the checkpoints saved before are kept"
            )
        if self.inference is not None:
            checkpoint[CHECKPOINT_KEY] = self.inference.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint of another network fails naming what differs, not with a traceback."""
        ours = self.state_dict()
        theirs = checkpoint.get("state_dict", {})
        differ = sorted(
            key
            for key in ours.keys() | theirs.keys()
            if key not in ours or key not in theirs or ours[key].shape != theirs[key].shape
        )
        if differ:
            raise ConfigError(
                f"the checkpoint holds another network ({len(differ)} tensors differ, e.g. "
                f"{differ[0]}): use the overrides it was trained with (.hydra/overrides.yaml)"
            )

    def _evaluate(self, batch: tuple[Tensor, Tensor], split: str) -> dict[str, list[str]]:
        images, targets = batch
        with naming_the_batch(images.shape, "validation" if split == "val" else "testing"):
            self.log(f"{split}/loss", self._losses(images, targets)["loss"], sync_dist=True)
            predictions = self(images)
        truths = self.tokenizer.decode_batch(targets)
        metrics = self.val_metrics if split == "val" else self.test_metrics
        metrics.update(predictions, truths)
        self.log_dict(metrics, prog_bar=split == "val")
        return {"predictions": predictions}

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, list[str]]:
        return self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, list[str]]:
        return self._evaluate(batch, "test")

    def configure_optimizers(self) -> Any:
        try:
            optimizer = self.optimizer_factory(self.parameters())
        except ValueError as error:  # torch checks lr, betas, weight decay
            raise ConfigError(f"optimizer: {error}") from None
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        try:
            scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        except ValueError as error:
            raise ConfigError(f"lr_scheduler: {error}") from None
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
