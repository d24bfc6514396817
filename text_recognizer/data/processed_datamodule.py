"""The datamodules read from one processed h5 file (see `processed`), built once from their
source: what they share, so that each names only what differs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from text_recognizer.data.augment import LINE_AFFINE, Affine, AugmentedStem
from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.processed import (
    SPLITS,
    ProcessedFile,
    Writer,
    check_labels,
    read_split,
)


class ProcessedDataModule(BaseDataModule, ABC):
    """Splits read from `file()`, which `prepare_data` builds with `writer()` unless complete.

    A subclass names its file (`file`: folder, name and what its digest covers), how it is
    written (`writer`) and what a sample is called when a label does not fit (`sample`). With
    `augment`, training crops get `affine` before the stem.
    """

    sample: ClassVar[str]
    affine: ClassVar[Affine] = LINE_AFFINE
    augment = False

    @abstractmethod
    def file(self) -> ProcessedFile:
        """The file the splits are read from."""

    @abstractmethod
    def writer(self) -> Writer:
        """Reads what the file is made from, and returns what writes it."""

    @property
    def digest(self) -> str:
        return self.file().digest

    @property
    def path(self) -> Path:
        return self.file().path

    @property
    def paths(self) -> list[Path]:
        return [self.path]

    def prepare_data(self) -> None:
        self.file().build(self.writer)

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "data_train"):
            return
        self.prepare_data()
        for split in SPLITS:
            images, texts, ids = read_split(self.path, split)
            check_labels(texts, ids, self.max_output_length, self.sample)
            setattr(self, f"data_{split}", self.dataset(images, texts))
        if self.augment:
            self.data_train.stem = AugmentedStem(
                self.stem.height, self.stem.width, self.affine, self.resize
            )
