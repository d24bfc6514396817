"""IAM lines: every handwritten line of every form, cropped by its words' boxes.

Processed once into `<data root>/processed/iam_lines/lines-<digest>.h5`, each crop already fitted
to the network's input by the shared stem (so loading is a read, and validation sees exactly what
inference would). Training crops get a small random affine on top.
"""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.download import load_metadata
from text_recognizer.data.iam.forms import IAM, SPLITS, Box, Form, Line
from text_recognizer.data.processed import ProcessedFile, Writer, write_split
from text_recognizer.data.processed_datamodule import ProcessedDataModule
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


class IAMLines(ProcessedDataModule):
    """Handwritten lines from IAM, writer-independent splits, fitted to a line network's input
    (iam_lines.yaml's size and label length, checked against the data when it is processed)."""

    sample = "IAM line"

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

    def file(self) -> ProcessedFile:
        sha = load_metadata("iam").sha256
        return ProcessedFile(
            "iam_lines", "lines", (FORMAT_VERSION, sha, self.stem.height, self.stem.width)
        )

    def writer(self) -> Writer:
        """The line crops of every split, fitted by the stem."""
        iam, shape = IAM.load(), (self.stem.height, self.stem.width)

        def write(f: h5py.File) -> None:
            usable = {form.id: usable_lines(form, self.tokenizer) for form in iam.forms}
            skipped = sum(len(form.lines) - len(usable[form.id]) for form in iam.forms)
            if skipped:
                print(
                    f"iam lines: skipped {skipped} lines without word boxes or with unknown chars"
                )
            for split in SPLITS:
                forms = iam.forms_of(split)
                count = sum(len(usable[form.id]) for form in forms)
                samples = _line_samples(iam, forms, self.stem, self.tokenizer, split)
                write_split(f, split, count, shape, samples)
                f[split].attrs["writers"] = sorted({form.writer for form in forms})

        return write
