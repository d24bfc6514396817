"""A tiny line reader overfit in seconds on a few rendered lines, saved the way training saves
it (LitTransformer in a Lightning Trainer, with an InferenceSpec): what inference tests read."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch
from conftest import TINY_LINE_DATA
from helpers import synthetic_lines
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from text_recognizer.data import registry
from text_recognizer.data.base import collate_cropped
from text_recognizer.data.synthetic.fonts import load_fonts
from text_recognizer.data.synthetic.render import Augmentation, render_line
from text_recognizer.decode import greedy_decode
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.spec import InferenceSpec

TEXTS = ["Hello world", "cat 42", "Quick fox?", "zebra", "Mind the gap.", "7 up"]
NETWORK: dict[str, Any] = {
    "_target_": "text_recognizer.network.conv_transformer.ConvTransformer",
    "num_tokens": 83,
    "pad_index": 0,
    "start_index": 1,
    "end_index": 2,
    "max_output_length": 24,
    "ctc_head": True,
    "ctc_memory": True,
    "ctc_decode_weight": 0.5,
    "encoder": {
        "_target_": "text_recognizer.network.convnext.ConvNext",
        "dim": 16,
        "dim_mults": [1, 2],
        "depths": [1, 1],
        "downsampling": [[2, 1], [4, 1]],
        "stem_kernel": [4, 4],
        "stem_stride": [4, 4],
    },
    "decoder": {
        "_target_": "text_recognizer.network.transformer.Decoder",
        "num_tokens": 83,
        "dim": 32,
        "depth": 2,
        "heads": 2,
        "dim_head": 16,
        "kv_heads": 1,
        "max_length": 24,
        "tie_embeddings": True,
        "absolute_positions": True,
    },
}
# What the checkpoint records as its datamodule: the tiny lines (conftest.TINY_LINE_DATA).
DATAMODULE = registry.values("synthetic_lines") | TINY_LINE_DATA


class Tiny(NamedTuple):
    checkpoint: Path
    images: list[np.ndarray]
    """uint8 (32, 640) dark-on-light renderings of TEXTS, as the synthetic lines are stored."""


def render(texts: list[str], family: str = "kalam", seed: int = 0) -> list[np.ndarray]:
    font = load_fonts([family])[0]
    shape = (DATAMODULE["height"], DATAMODULE["width"])
    lines = [
        render_line(text, font, np.random.default_rng(seed + i), *shape, Augmentation(strength=0))
        for i, text in enumerate(texts)
    ]
    assert all(line is not None for line in lines)
    return [line for line in lines if line is not None]


class StopWhenPerfect(pl.Callback):
    """Stop as soon as greedy decoding reads every training line right."""

    def __init__(self, images: torch.Tensor, texts: list[str]) -> None:
        self.images, self.texts = images, texts

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, *args: Any) -> None:
        if trainer.global_step % 10 == 0:
            module.eval()
            if module.tokenizer.decode_batch(greedy_decode(module.network, self.images)) == (
                self.texts
            ):
                trainer.should_stop = True
            module.train()


def train(path: Path) -> Tiny:
    """Through the training code path: the datamodule's dataset and cropping collate, the
    LitTransformer with the spec `training/run.py` builds, `Trainer.save_checkpoint`."""
    torch.manual_seed(0)
    images = render(TEXTS)
    datamodule = synthetic_lines(**TINY_LINE_DATA)
    dataset = datamodule.dataset(np.stack(images), TEXTS)
    model = LitTransformer(
        instantiate(OmegaConf.create(NETWORK)),
        functools.partial(torch.optim.AdamW, lr=3e-3),
        tokenizer=datamodule.tokenizer,
        ctc_weight=0.5,
        inference=InferenceSpec.of_run(NETWORK, DATAMODULE, datamodule),
    )
    everything = datamodule.eval_transform.batch(images)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=600,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[StopWhenPerfect(everything, TEXTS)],
    )
    loader = DataLoader(dataset, batch_size=3, shuffle=True, collate_fn=collate_cropped)
    trainer.fit(model, train_dataloaders=loader)
    trainer.save_checkpoint(path)
    return Tiny(path, images)
