"""IAM lines: every handwritten line of every form, cropped by its words' boxes.

Processed once into `<data root>/processed/iam_lines/lines-<digest>.h5`, each crop already fitted
to the network's input by the shared stem (so loading is a read, and validation sees exactly what
inference would). Training crops get a small random affine on top.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.augment import LINE_AFFINE, AugmentedStem
from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.download import load_metadata
from text_recognizer.data.iam.forms import IAM, SPLITS, Box, Form, Line
from text_recognizer.data.paths import data_root
from text_recognizer.data.processed import (
    build,
    check_labels,
    digest,
    is_complete,
    read_split,
    write_split,
)
from text_recognizer.data.transforms import ImageStem
from text_recognizer.tokenizer import Tokenizer

FORMAT_VERSION = 1


def usable_lines(form: Form, tokenizer: Tokenizer) -> list[tuple[Line, Box]]:
    """Lines with a box, some text, and only characters the tokenizer knows, with their box."""
    return [
        (line, line.box)
        for line in form.lines
        if line.box is not None and line.text.strip() and not tokenizer.unsupported(line.text)
    ]


def _line_samples(
    iam: IAM, forms: list[Form], stem: ImageStem, tokenizer: Tokenizer, split: str
) -> Iterator[tuple[np.ndarray, str, str]]:
    for form in tqdm(forms, desc=f"iam lines {split}", unit="form"):
        lines = usable_lines(form, tokenizer)
        if not lines:
            continue
        image = iam.image(form)
        for line, box in lines:
            yield stem.fit(iam.crop(form, image, box)), line.text, line.id


def process_lines(path: Path, expected: str, height: int, width: int) -> bool:
    """Write the fitted line crops of every split to `path` unless done; True if built now."""
    if is_complete(path, expected):
        return False
    iam = IAM.load()

    def write(f: h5py.File) -> None:
        stem, tokenizer = ImageStem(height, width), Tokenizer()
        skipped = sum(len(form.lines) - len(usable_lines(form, tokenizer)) for form in iam.forms)
        if skipped:
            print(f"iam lines: skipped {skipped} lines without word boxes or with unknown chars")
        for split in SPLITS:
            forms = iam.forms_of(split)
            count = sum(len(usable_lines(form, tokenizer)) for form in forms)
            samples = _line_samples(iam, forms, stem, tokenizer, split)
            write_split(f, split, count, (height, width), samples)
            f[split].attrs["writers"] = sorted({form.writer for form in forms})

    return build(path, expected, write)


class IAMLines(BaseDataModule):
    """Handwritten lines from IAM, writer-independent splits, fitted to a line network's input
    (iam_lines.yaml's size and label length, checked against the data when it is processed)."""

    def __init__(
        self,
        *,
        batch_size: int,
        num_workers: int,
        eval_batch_size: int | None,
        height: int,
        width: int,
        max_output_length: int,
        augment: bool,
    ) -> None:
        super().__init__(
            batch_size,
            num_workers,
            height,
            width,
            max_output_length,
            eval_batch_size=eval_batch_size,
        )
        self.augment = augment

    @property
    def digest(self) -> str:
        sha = load_metadata("iam").sha256
        return digest(FORMAT_VERSION, sha, self.stem.height, self.stem.width)

    @property
    def path(self) -> Path:
        return data_root() / "processed" / "iam_lines" / f"lines-{self.digest}.h5"

    def prepare_data(self) -> None:
        process_lines(self.path, self.digest, self.stem.height, self.stem.width)

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "data_train"):
            return
        self.prepare_data()
        for split in SPLITS:
            images, texts, ids = read_split(self.path, split)
            check_labels(texts, ids, self.max_output_length, "IAM line")
            setattr(self, f"data_{split}", self.dataset(images, texts))
        if self.augment:
            self.data_train.stem = AugmentedStem(
                self.stem.height, self.stem.width, LINE_AFFINE, self.resize
            )

    def describe(self) -> str:
        return f"{super().describe()}\n  file: {self.path}"
