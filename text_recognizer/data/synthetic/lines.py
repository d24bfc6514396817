"""The default dataset: handwriting-style lines rendered offline, held-out fonts for val/test."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.processed import reading
from text_recognizer.data.synthetic import pool
from text_recognizer.data.synthetic.generate import SPLITS, SyntheticLinesConfig, generate


class SyntheticLines(BaseDataModule):
    """Renders the lines once (in `prepare_data`) and serves them from memory.

    Every value but `crop_width` is synthetic_lines.yaml's (`registry.configured` builds from
    it), so none has a default here to drift from it.
    """

    def __init__(
        self,
        *,
        batch_size: int,
        num_workers: int,
        eval_batch_size: int | None,
        train_size: int,
        val_size: int,
        test_size: int,
        height: int,
        width: int,
        max_text_length: int,
        seed: int,
        augmentation_strength: float,
        augmentations: Sequence[str],
        sentences: float,
        train_families: Sequence[str] | None,
        heldout_families: Sequence[str] | None,
        font_folders: Sequence[str],
        heldout_font_folders: Sequence[str],
        crop_width: bool = True,
    ) -> None:
        super().__init__(
            batch_size,
            num_workers,
            height,
            width,
            max_text_length + 2,
            crop_width,
            eval_batch_size=eval_batch_size,
        )
        self.config = SyntheticLinesConfig(
            train_size=train_size,
            val_size=val_size,
            test_size=test_size,
            height=height,
            width=width,
            max_text_length=max_text_length,
            seed=seed,
            augmentation_strength=augmentation_strength,
            augmentations=tuple(augmentations),
            sentences=sentences,
            train_families=None if train_families is None else tuple(train_families),
            heldout_families=None if heldout_families is None else tuple(heldout_families),
            font_folders=tuple(font_folders),
            heldout_font_folders=tuple(heldout_font_folders),
        )
        self.fonts: dict[str, list[str]] = {}
        self.font_families: dict[str, list[str]] = {}
        self.font_ids: dict[str, list[int]] = {}

    @property
    def path(self) -> Path:
        return self.config.path()

    @property
    def paths(self) -> list[Path]:
        return [self.path]

    def prepare_data(self) -> None:
        generate(self.config)

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "data_train"):
            return
        path = generate(self.config)
        with reading(path) as f:
            for split in SPLITS:
                group = f[split]
                texts = [t.decode() for t in group["texts"][:]]
                dataset = self.dataset(group["images"][:], texts)
                setattr(self, f"data_{split}", dataset)
                self.fonts[split] = json.loads(group.attrs["fonts"])
                self.font_families[split] = json.loads(group.attrs["families"])
                self.font_ids[split] = group["font_ids"][:].tolist()

    def groups(self, split: str) -> list[str]:
        families = self.font_families[split]
        return [families[i] for i in self.font_ids[split]]

    def details(self) -> list[str]:
        lines = []
        for split in ("train", "val"):
            families = sorted(set(self.font_families[split]))
            lines.append(
                f"  {split:5s} fonts: {len(self.fonts[split])} files of {len(families)} "
                f"families: {', '.join(families)}"
            )
        return [*lines, f"  pool: {pool.describe()}"]
