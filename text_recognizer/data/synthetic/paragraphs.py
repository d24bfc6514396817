"""Offline paragraphs: runs of the synthetic handwriting lines stacked into pages.

The whole paragraph pipeline (newline tokens, a 576 x 640 input, labels of hundreds of
characters) then trains and is tested with no download. Lines are not rendered anew: the
paragraphs reuse the synthetic lines' h5 (the one `make generate` renders), training paragraphs
from training-font lines and validation/test ones from the held-out fonts' lines.

Validation and test pages are assembled once into an h5. Training pages are assembled as they
are drawn (`text_recognizer.data.pages.curriculum`), so that a curriculum can grow them from one
line to `max_lines` and every epoch sees new pages. Batches are cropped to their content, so a
batch of short pages costs the encoder only what it holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.base import ImageTextDataset, run_seed
from text_recognizer.data.pages.assembly import Layout, LinePool
from text_recognizer.data.pages.curriculum import AssembledPages, Curriculum, CurriculumSampler
from text_recognizer.data.processed import (
    SPLITS,
    ProcessedFile,
    Writer,
    check_labels,
    read_split,
    reading,
    write_split,
)
from text_recognizer.data.processed_datamodule import ProcessedDataModule
from text_recognizer.data.sampler import WidthBucketSampler
from text_recognizer.data.synthetic.generate import generate
from text_recognizer.data.synthetic.lines import SyntheticLines

FORMAT_VERSION = 3  # 2: lines trimmed and whitened by transforms/ink.py; 3: one hand a page,
# its family stored, no training split
EVAL_SPLITS = ("val", "test")
GAPS = tuple(range(0, 11))  # pixels of paper between one line's ink and the next's
INDENTS = tuple(range(0, 13))


class SyntheticParagraphs(ProcessedDataModule):
    """Assembled once into `<data root>/processed/synthetic_paragraphs/paragraphs-<digest>.h5`,
    with synthetic_paragraphs.yaml's values; `lines` is the synthetic lines datamodule its pages
    are stacked from (synthetic_lines.yaml, composed into it)."""

    sample = "synthetic paragraph"
    resize = "shrink"

    def __init__(
        self,
        *,
        batch_size: int,
        num_workers: int,
        train_size: int,
        val_size: int,
        test_size: int,
        height: int,
        width: int,
        max_output_length: int,
        min_lines: int,
        max_lines: int,
        seed: int,
        lines: SyntheticLines,
        curriculum: Sequence[Sequence[int]] | None,
    ) -> None:
        super().__init__(
            batch_size,
            num_workers,
            height,
            width,
            max_output_length,
            crop_width=True,
            crop_height=True,
        )
        if not 1 <= min_lines <= max_lines:
            raise ValueError(f"need 1 <= min_lines <= max_lines, got {min_lines}, {max_lines}")
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        for split, size in self.sizes.items():
            if size <= 0:
                raise ValueError(f"{split}_size must be positive, got {size}")
        self.layout = Layout(tuple(range(min_lines, max_lines + 1)), GAPS, INDENTS)
        self.curriculum = Curriculum.parse(curriculum) if curriculum else None
        self.families: dict[str, list[str]] = {}
        self.seed = seed
        self.lines = lines.config  # synthetic_lines.yaml's, so `make generate`'s file is read

    def file(self) -> ProcessedFile:
        """The validation and test pages."""
        sizes = {split: self.sizes[split] for split in EVAL_SPLITS}
        params = (sizes, self.layout, self.seed, self.max_output_length)
        parts = (FORMAT_VERSION, self.lines.digest(), self.stem.height, self.stem.width, *params)
        return ProcessedFile("synthetic_paragraphs", "paragraphs", parts)

    def writer(self) -> Writer:
        lines = generate(self.lines)

        def write(f: h5py.File) -> None:
            for split in EVAL_SPLITS:
                size = self.sizes[split]
                pool, families = self._pool(lines, split)
                firsts: list[int] = []
                samples = self._samples(pool, split, size, firsts)
                write_split(f, split, size, (self.stem.height, self.stem.width), samples)
                page_families = [families[pool.groups[i]] for i in firsts]
                f[split].create_dataset("families", data=np.array(page_families, dtype="S"))

        return write

    @staticmethod
    def _pool(lines: Path, split: str) -> tuple[LinePool, list[str]]:
        """The split's lines, grouped by font (pages are in one hand), and the family names of
        the font indices."""
        with reading(lines) as source:
            group = source[split]
            crops = list(group["images"][:])
            texts = [t.decode() for t in group["texts"][:]]
            families = json.loads(group.attrs["families"])
            return LinePool(crops, texts, group["font_ids"][:]), families

    def _samples(
        self, pool: LinePool, split: str, size: int, firsts: list[int]
    ) -> Iterator[tuple[np.ndarray, str, str]]:
        """The split's pages; each page's first line is appended to `firsts`."""
        height, width = self.stem.height, self.stem.width
        for i in tqdm(range(size), desc=f"synthetic paragraphs {split}", unit="paragraph"):
            rng = np.random.default_rng([self.seed, SPLITS.index(split), i])
            page, text, first = pool.assemble(
                rng, self.layout, height, width, self.max_output_length - 2
            )
            firsts.append(first)
            yield page, text, f"{split}-{i}"

    def setup(self, stage: str | None = None) -> None:
        """Validation and test pages from the h5; the training lines only when fitting (their
        pool takes a while to build, and evaluation needs none of it)."""
        if not hasattr(self, "data_val"):
            self.prepare_data()
            for split in EVAL_SPLITS:
                images, texts, ids = read_split(self.path, split)
                check_labels(texts, ids, self.max_output_length, self.sample)
                setattr(self, f"data_{split}", self.dataset(images, texts))
                with reading(self.path) as f:
                    self.families[split] = [n.decode() for n in f[split]["families"][:]]
        if stage not in (None, "fit") or hasattr(self, "data_train"):
            return
        self.data_train = AssembledPages(  # type: ignore[assignment]
            self._pool(self.lines.path(), "train")[0],
            self.layout,
            self.stem,
            self.tokenizer,
            self.max_output_length,
            self.sizes["train"],
            self.seed,
        )

    def groups(self, split: str) -> list[str] | None:
        """The font family a page is written in (validation and test)."""
        return self.families.get(split)

    def _sampler(self, dataset: ImageTextDataset, train: bool) -> WidthBucketSampler:
        if not train:
            return super()._sampler(dataset, train)
        return CurriculumSampler(
            len(dataset), self.batch_size, self.layout.line_counts, self.curriculum, run_seed()
        )

    def details(self) -> list[str]:
        stages = (
            ", ".join(f"{lines} from page {start:,}" for start, lines in self.curriculum.stages)
            if self.curriculum
            else "none"
        )
        return [
            f"  training pages: assembled as drawn, {self.sizes['train']:,} an epoch (shown: the "
            f"first epoch's, at the last stage); the most lines a page holds: {stages}"
        ]

    def describe(self) -> str:
        return f"{super().describe()}\n  lines: {self.lines.path()}"
