"""IAM paragraphs: the handwritten part of each form, its lines joined by the newline token.

Real paragraphs are cropped at a quarter of the scan's resolution and placed, unscaled, at the top
left of the network's input by the stem's `shrink` rule, the one `predict` applies to a page;
processing fails naming both if the input cannot hold the largest.
Synthetic paragraphs stack random runs of training lines with the line counts, gaps and indents of
real training paragraphs, for many more page layouts than IAM's 1,500 forms; they are assembled as
they are drawn, new every epoch, from the training lines stored once. One datamodule, three
configs: real training pages (iam_paragraphs.yaml), synthetic ones (iam_synthetic_paragraphs.yaml)
and both (iam_extended_paragraphs.yaml); validation and test are always real.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.augment import PARAGRAPH_AFFINE
from text_recognizer.data.base import ImageTextDataset, run_seed
from text_recognizer.data.download import load_metadata
from text_recognizer.data.iam.forms import FORM_SCALE, IAM, SPLITS, Form
from text_recognizer.data.iam.lines import usable_lines
from text_recognizer.data.pages.assembly import Layout, LinePool, check_fits
from text_recognizer.data.pages.curriculum import AssembledPages, Curriculum, CurriculumSampler
from text_recognizer.data.processed import ProcessedFile, Writer, reading, write_split
from text_recognizer.data.processed_datamodule import ProcessedDataModule
from text_recognizer.data.sampler import WidthBucketSampler
from text_recognizer.metadata import iam as metadata
from text_recognizer.tokenizer import Tokenizer

FORMAT_VERSION = 2  # 2: lines trimmed and whitened by transforms/ink.py
SCALE = metadata.PARAGRAPH_SCALE


def usable_paragraph(form: Form, tokenizer: Tokenizer) -> bool:
    """Every line has a box (else the crop would miss text its label has) and known chars."""
    return form.box is not None and bool(form.text.strip()) and not tokenizer.unsupported(form.text)


def training_lines(iam: IAM, max_text_length: int) -> tuple[list[np.ndarray], list[str], Layout]:
    """Training line crops at paragraph scale, their texts, and the layout of real training
    paragraphs."""
    tokenizer = Tokenizer()
    crops: list[np.ndarray] = []
    texts: list[str] = []
    counts: list[int] = []
    gaps: list[int] = []
    indents: list[int] = []
    for form in tqdm(iam.forms_of("train"), desc="iam training lines", unit="form"):
        lines = [
            (line, box)
            for line, box in usable_lines(form, tokenizer)
            if len(line.text) <= max_text_length
        ]
        if not lines:
            continue
        image = iam.image(form)
        crops += [iam.crop(form, image, box, SCALE, padding=0) for _, box in lines]
        texts += [line.text for line, _ in lines]
        boxes = [line.box for line in form.lines if line.box is not None]
        if form.box is not None:
            scale = (image.width / form.width if form.width else FORM_SCALE) * SCALE
            counts.append(len(boxes))
            indents += [round((b[0] - form.box[0]) * scale) for b in boxes]
            gaps += [round((b[1] - a[3]) * scale) for a, b in itertools.pairwise(boxes)]
    if not crops:
        raise ValueError("the IAM archive has no usable training lines")
    layout = Layout(tuple(counts or [1]), tuple(gaps or [0]), tuple(indents or [0]))
    return crops, texts, layout


def read_line_pool(path: Path) -> tuple[LinePool, Layout]:
    """The pool and layout `process_line_pool` wrote."""
    with reading(path) as f:
        shapes = f["shapes"][:]
        crops = [flat.reshape(shape) for flat, shape in zip(f["crops"][:], shapes, strict=True)]
        texts = [t.decode() for t in f["texts"][:]]
        layout = Layout(**{k: tuple(v) for k, v in json.loads(f.attrs["layout"]).items()})
    return LinePool(crops, texts), layout


class IAMParagraphs(ProcessedDataModule):
    """IAM paragraphs, writer-independent splits, at a fixed scale on a fixed page (the
    iam_*paragraphs.yaml's size and label length, checked against the data when processed).

    Validation and test are real. Training reads the real paragraphs (`real_train`),
    `synthetic_size` pages an epoch assembled from the training lines as they are drawn
    (through `curriculum` if given, see `text_recognizer.data.pages.curriculum`), or both (a
    curriculum caps only the synthetic pages: real ones come whole).
    """

    sample = "IAM paragraph"
    resize = "shrink"
    affine = PARAGRAPH_AFFINE

    def __init__(
        self,
        *,
        batch_size: int,
        num_workers: int,
        height: int,
        width: int,
        max_output_length: int,
        augment: bool,
        real_train: bool,
        synthetic_size: int,
        seed: int,
        curriculum: Sequence[Sequence[int]] | None,
    ) -> None:
        super().__init__(batch_size, num_workers, height, width, max_output_length)
        if synthetic_size < 0 or not (real_train or synthetic_size):
            raise ValueError(
                f"need real_train or a positive synthetic_size, got {real_train}, {synthetic_size}"
            )
        self.augment = augment
        self.real_train = real_train
        self.synthetic_size = synthetic_size
        self.seed = seed
        self.curriculum = Curriculum.parse(curriculum) if curriculum else None

    def _file(self, folder: str, prefix: str, *params: object) -> ProcessedFile:
        sha = load_metadata("iam").sha256
        parts = (FORMAT_VERSION, sha, self.stem.height, self.stem.width, *params)
        return ProcessedFile(folder, prefix, parts)

    def file(self) -> ProcessedFile:
        """The real paragraphs."""
        return self._file("iam_paragraphs", "paragraphs")

    def pool(self) -> ProcessedFile:
        """The training lines synthetic pages are assembled from, and the layout of real
        training paragraphs: reading them from the archive means decoding every training form,
        so it is done once."""
        return self._file("iam_synthetic_paragraphs", "lines", self.max_output_length)

    @property
    def paths(self) -> list[Path]:
        return [self.path, self.pool().path] if self.synthetic_size else [self.path]

    def prepare_data(self) -> None:
        super().prepare_data()
        if self.synthetic_size:
            self.pool().build(self._pool_writer)

    def writer(self) -> Writer:
        """The real paragraphs of every split, refused naming the largest if the page cannot
        hold them."""
        height, width = self.stem.height, self.stem.width
        iam, tokenizer = IAM.load(), self.tokenizer
        forms = {
            split: [f for f in iam.forms_of(split) if usable_paragraph(f, tokenizer)]
            for split in SPLITS
        }
        if skipped := len(iam.forms) - sum(len(f) for f in forms.values()):
            print(
                f"iam paragraphs: skipped {skipped} forms with a line lacking boxes or known chars"
            )
        sizes = {
            form.id: iam.crop_size(form, form.box, SCALE)
            for split_forms in forms.values()
            for form in split_forms
            if form.box is not None
        }
        if not sizes:
            raise ValueError(
                f"{iam.folder} holds no form whose lines all have boxes and known chars"
            )
        tallest = max(sizes, key=lambda i: sizes[i][1])
        widest = max(sizes, key=lambda i: sizes[i][0])
        check_fits(
            f"IAM paragraph crops are {sizes[tallest][1]} px high ({tallest}) and "
            f"{sizes[widest][0]} px wide ({widest})",
            (sizes[tallest][1], sizes[widest][0]),
            height,
            width,
        )

        def samples(split_forms: list[Form], split: str) -> Iterator[tuple[np.ndarray, str, str]]:
            for form in tqdm(split_forms, desc=f"iam paragraphs {split}", unit="form"):
                assert form.box is not None
                crop = iam.crop(form, iam.image(form), form.box, SCALE)
                yield self.stem.fit(crop), form.text, form.id

        def write(f: h5py.File) -> None:
            for split in SPLITS:
                count = len(forms[split])
                write_split(f, split, count, (height, width), samples(forms[split], split))

        return write

    def _pool_writer(self) -> Writer:
        crops, texts, layout = training_lines(IAM.load(), self.max_output_length - 2)

        def write(f: h5py.File) -> None:
            flat = f.create_dataset("crops", (len(crops),), dtype=h5py.vlen_dtype(np.uint8))
            for i, crop in enumerate(crops):
                flat[i] = crop.ravel()
            f["shapes"] = np.array([crop.shape for crop in crops], dtype=np.int32)
            f["texts"] = np.array([t.encode() for t in texts], dtype=object)
            f.attrs["layout"] = json.dumps(dataclasses.asdict(layout))

        return write

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "data_train"):
            return
        super().setup(stage)
        if self.synthetic_size:
            pool, self.layout = read_line_pool(self.pool().path)
            self.data_train = AssembledPages(  # type: ignore[assignment]
                pool,
                self.layout,
                self.data_train.stem,
                self.tokenizer,
                self.max_output_length,
                self.synthetic_size,
                self.seed,
                real=self.data_train if self.real_train else None,
            )

    def _sampler(self, dataset: ImageTextDataset, train: bool) -> WidthBucketSampler:
        if not (train and self.synthetic_size):
            return super()._sampler(dataset, train)
        return CurriculumSampler(
            len(dataset), self.batch_size, self.layout.line_counts, self.curriculum, run_seed()
        )
