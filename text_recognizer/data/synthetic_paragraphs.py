"""Offline paragraphs: runs of the synthetic handwriting lines stacked into pages.

The whole paragraph pipeline (newline tokens, a 576 x 640 input, labels of hundreds of
characters) then trains and is tested with no download. Lines are not rendered anew: the
paragraphs reuse the synthetic lines' h5 (the one `make generate` renders), training paragraphs
from training-font lines and validation/test ones from the held-out fonts' lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.paragraphs import Layout, LinePool
from text_recognizer.data.paths import data_root
from text_recognizer.data.processed import (
    SPLITS,
    build,
    check_labels,
    digest,
    is_complete,
    read_split,
    reading,
    write_split,
)
from text_recognizer.data.synthetic.generate import SyntheticLinesConfig, generate
from text_recognizer.metadata import iam

FORMAT_VERSION = 2  # 2: lines trimmed and whitened by transforms/ink.py
GAPS = tuple(range(0, 11))  # pixels of paper between one line's ink and the next's
INDENTS = tuple(range(0, 13))


class SyntheticParagraphs(BaseDataModule):
    """Assembled once into `<data root>/processed/synthetic_paragraphs/paragraphs-<digest>.h5`."""

    resize = "shrink"

    def __init__(
        self,
        batch_size: int = 4,
        num_workers: int = 0,
        train_size: int = 1_000,
        val_size: int = 32,
        test_size: int = 32,
        height: int = iam.PARAGRAPH_HEIGHT,
        width: int = iam.PARAGRAPH_WIDTH,
        max_output_length: int = iam.PARAGRAPH_MAX_OUTPUT_LENGTH,
        min_lines: int = 2,
        max_lines: int = 8,
        seed: int = 0,
        line_train_size: int = 20_000,
        line_val_size: int = 1_000,
        line_test_size: int = 1_000,
    ) -> None:
        super().__init__(batch_size, num_workers, height, width, max_output_length)
        if not 1 <= min_lines <= max_lines:
            raise ValueError(f"need 1 <= min_lines <= max_lines, got {min_lines}, {max_lines}")
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        for split, size in self.sizes.items():
            if size <= 0:
                raise ValueError(f"{split}_size must be positive, got {size}")
        self.layout = Layout(tuple(range(min_lines, max_lines + 1)), GAPS, INDENTS)
        self.seed = seed
        # The lines' defaults are SyntheticLines' defaults: `make generate` renders that file.
        self.lines = SyntheticLinesConfig(
            train_size=line_train_size, val_size=line_val_size, test_size=line_test_size
        )

    def _key(self) -> str:
        params = (self.sizes, self.layout, self.seed, self.max_output_length)
        return digest(
            FORMAT_VERSION, self.lines.digest(), self.stem.height, self.stem.width, *params
        )

    @property
    def path(self) -> Path:
        return data_root() / "processed" / "synthetic_paragraphs" / f"paragraphs-{self._key()}.h5"

    def prepare_data(self) -> None:
        path, key = self.path, self._key()
        if is_complete(path, key):
            return
        lines = generate(self.lines)
        build(path, key, lambda f: self._write(f, lines))

    def _write(self, f: h5py.File, lines: Path) -> None:
        for split in SPLITS:
            with reading(lines) as source:
                crops = list(source[split]["images"][:])
                texts = [t.decode() for t in source[split]["texts"][:]]
            pool = LinePool(crops, texts)
            size = self.sizes[split]
            samples = self._samples(pool, split, size)
            write_split(f, split, size, (self.stem.height, self.stem.width), samples)

    def _samples(
        self, pool: LinePool, split: str, size: int
    ) -> Iterator[tuple[np.ndarray, str, str]]:
        height, width = self.stem.height, self.stem.width
        for i in tqdm(range(size), desc=f"synthetic paragraphs {split}", unit="paragraph"):
            rng = np.random.default_rng([self.seed, SPLITS.index(split), i])
            page, text = pool.assemble(rng, self.layout, height, width, self.max_output_length - 2)
            yield page, text, f"{split}-{i}"

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "data_train"):
            return
        self.prepare_data()
        for split in SPLITS:
            images, texts, ids = read_split(self.path, split)
            check_labels(texts, ids, self.max_output_length, "synthetic paragraph")
            setattr(self, f"data_{split}", self.dataset(images, texts))

    def describe(self) -> str:
        return f"{super().describe()}\n  file: {self.path}\n  lines: {self.lines.path()}"
