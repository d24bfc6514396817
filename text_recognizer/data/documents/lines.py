"""Your own documents as a line dataset: PAGE XML, ALTO and line folders, mixed, split by page.

`sources` are folders, files or globs. Pages are split at random (seeded) into train, val and test
by `val_fraction` and `test_fraction`, so no page gives lines to two splits; a split with a source
list of its own (`train_sources`, `val_sources`, `test_sources`) takes exactly those pages instead.

Labels are the transcriptions in the Unicode form `normalization`, with `charset_map` applied (a
character -> its replacement, "" to drop it) and surrounding spaces removed. The charset is built
from the training labels: characters seen fewer than `min_char_count` times are left out (map
them to keep their lines), and `keep_charset` starts it from the charset every model of this
repo reads, so a fine-tuned model keeps what its checkpoint could read. The tokenizer records the
form and the table, and the checkpoint with it.

A line that cannot be used is skipped and counted per split with its reason: no text, characters
outside the charset, longer than `max_text_length`, or (from the readers) no coordinates, a
degenerate shape, outside the image. A document that cannot be read at all is reported in one
line and left out; the good ones still make the dataset.

The pages are read once into `<data root>/processed/documents/lines-<digest>.h5`, each line cut
from its page (`documents/images.py`) and fitted by the shared stem; the digest covers every
file's bytes, the labels and the shapes, so editing a page builds a new file.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from text_recognizer.data.documents import Document, Line, find_documents, read_document
from text_recognizer.data.documents.images import PAD, line_image, page_pixels
from text_recognizer.data.processed import SPLITS, ProcessedFile, Writer, write_split
from text_recognizer.data.processed_datamodule import ProcessedDataModule
from text_recognizer.errors import ConfigError, DataError
from text_recognizer.metadata.charset import CHARSET
from text_recognizer.tokenizer import Tokenizer, charset_of, normalize_text

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Page:
    """A document of one split, with the lines that made it into the dataset and their labels."""

    document: Document
    lines: tuple[tuple[Line, str], ...]


class DocumentLines(ProcessedDataModule):
    """Lines of the user's own transcribed pages, cut by their polygons, through the line stem.

    Every value but `crop_width` is documents.yaml's, so none has a default here to drift.
    """

    sample = "document line"

    def __init__(
        self,
        *,
        sources: Sequence[str],
        train_sources: Sequence[str],
        val_sources: Sequence[str],
        test_sources: Sequence[str],
        val_fraction: float,
        test_fraction: float,
        seed: int,
        normalization: str | None,
        charset_map: Mapping[str, str] | None,
        min_char_count: int,
        keep_charset: bool,
        batch_size: int,
        num_workers: int,
        eval_batch_size: int | None,
        height: int,
        width: int,
        max_text_length: int,
        augment: bool,
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
        if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1:
            raise ValueError("val_fraction and test_fraction must be in [0, 1)")
        if min_char_count < 1:
            raise ValueError(f"min_char_count must be at least 1, got {min_char_count}")
        self.augment = augment
        self.max_text_length = max_text_length
        mapping = dict(charset_map or {})
        documents = self._split(
            {"train": train_sources, "val": val_sources, "test": test_sources},
            sources,
            {"val": val_fraction, "test": test_fraction},
            seed,
        )
        self.failed: list[str] = []
        read = {split: self._read(paths) for split, paths in documents.items()}
        labels = {
            split: [_labels(doc, normalization, mapping) for doc in docs]
            for split, docs in read.items()
        }
        base = "".join(c for c in CHARSET if mapping.get(c, c) == c) if keep_charset else ""
        # with no training label, the charset is every split's, so `info` still shows the lines
        self.charset_from = ("train",) if _texts(labels["train"]) else SPLITS
        found = [label for split in self.charset_from for label in _texts(labels[split])]
        charset, self.rare = charset_of(found, min_char_count, base)
        self.tokenizer = Tokenizer(charset, normalization, mapping)
        self.pages: dict[str, list[Page]] = {}
        self.skipped: dict[str, Counter[str]] = {}
        for split in SPLITS:
            self.pages[split], self.skipped[split] = self._keep(read[split], labels[split])

    def _split(
        self,
        explicit: dict[str, Sequence[str]],
        sources: Sequence[str],
        fractions: dict[str, float],
        seed: int,
    ) -> dict[str, list[Path]]:
        """The documents of each split: its own list, or its share of the shuffled pool."""
        given = {split: find_documents(list(s)) for split, s in explicit.items() if s}
        taken = [path for paths in given.values() for path in paths]
        if twice := sorted({p for p in taken if taken.count(p) > 1}):
            raise ConfigError(f"datamodule: {twice[0]} is in two splits' sources")
        pool = [path for path in find_documents(list(sources)) if path not in taken]
        if not pool and "train" not in given:
            raise ConfigError(
                "datamodule.sources is empty: give folders, files or globs of PAGE XML, ALTO or "
                "line images with .gt.txt (datamodule.sources=[pages/])"
            )
        pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
        total = len(pool)
        split: dict[str, list[Path]] = {}
        for name in ("test", "val"):
            if name not in given:
                count = max(1, round(fractions[name] * total)) if fractions[name] else 0
                split[name], pool = pool[:count], pool[count:]
        split["train"] = pool
        self.emptied = {
            name: _emptied(name, {n: len(p) for n, p in split.items()}, fractions, total)
            for name in SPLITS
            if name not in given and not split[name]
        }
        return {name: sorted(given.get(name, []) + split.get(name, [])) for name in SPLITS}

    def _read(self, paths: list[Path]) -> list[Document]:
        """The documents that can be read; each that cannot is reported in one line."""
        documents = []
        for path in paths:
            try:
                documents.append(read_document(path))
            except (DataError, OSError) as error:
                self.failed.append(str(error))
                print(f"skipped: {error}", file=sys.stderr, flush=True)
        return documents

    def _keep(
        self, documents: list[Document], labels: list[list[tuple[Line, str | None]]]
    ) -> tuple[list[Page], Counter[str]]:
        skipped = Counter(s.reason for doc in documents for s in doc.skipped)
        pages = []
        for document, lines in zip(documents, labels, strict=True):
            kept = []
            for line, label in lines:
                reason = self._problem(label)
                if reason:
                    skipped[reason] += 1
                elif label is not None:
                    kept.append((line, label))
            pages.append(Page(document, tuple(kept)))
        return pages, skipped

    def _problem(self, label: str | None) -> str | None:
        if label is None:
            return "no text"
        if not label:
            return "empty text"
        if self.tokenizer.unsupported(label):
            return "characters outside the charset"
        if len(label) > self.max_text_length:
            return f"longer than {self.max_text_length} characters"
        return None

    def file(self) -> ProcessedFile:
        return ProcessedFile("documents", "lines", self._digest_parts)

    @cached_property
    def _digest_parts(self) -> tuple[object, ...]:
        """Every document's and image's bytes, each line's label and the shapes."""
        pages = {
            split: [
                (
                    str(page.document.path),
                    _sha256(page.document.path),
                    _sha256(page.document.image),
                    [(line.id, label) for line, label in page.lines],
                )
                for page in self.pages[split]
            ]
            for split in SPLITS
        }
        return (FORMAT_VERSION, self.stem.height, self.stem.width, PAD, pages)

    def writer(self) -> Writer:
        def write(f: h5py.File) -> None:
            for split in SPLITS:
                count = sum(len(page.lines) for page in self.pages[split])
                write_split(
                    f, split, count, (self.stem.height, self.stem.width), self._lines(split)
                )

        return write

    def _lines(self, split: str) -> Iterator[tuple[np.ndarray, str, str]]:
        for page in tqdm(self.pages[split], desc=f"documents {split}", unit="page"):
            if not page.lines:
                continue
            pixels = page_pixels(page.document.path, page.document.image)
            for line, label in page.lines:
                crop = self.stem.fit(line_image(pixels, line))
                yield crop, label, f"{page.document.path.name}#{line.id}"

    def train_dataloader(self) -> DataLoader:
        """Refused, saying why, when no training line survived: `info` still describes the rest."""
        if not any(page.lines for page in self.pages["train"]):
            if "train" in self.emptied:
                why = f"the train split is {self.emptied['train']}"
            else:
                skipped = self.skipped["train"].most_common()
                why = f"{len(self.pages['train'])} pages; lines skipped: " + (
                    ", ".join(f"{n} {reason}" for reason, n in skipped) or "none"
                )
            raise DataError(f"documents: no training line can be used: {why}")
        return super().train_dataloader()

    def details(self) -> list[str]:
        lines = []
        for split in SPLITS:
            pages = self.pages[split]
            skipped = ", ".join(f"{n} {reason}" for reason, n in self.skipped[split].most_common())
            lines.append(
                f"  {split:5s} {len(pages)} pages, {sum(len(p.lines) for p in pages)} lines"
                + (f": {self.emptied[split]}" if split in self.emptied else "")
                + (f", skipped {skipped}" if skipped else "")
            )
        rare = ", ".join(f"{c!r}:{n}" for c, n in sorted(self.rare.items(), key=lambda x: x[1]))
        lines.append(
            f"  charset ({len(self.tokenizer.charset)}): {self.tokenizer.charset!r}"
            + ("" if self.charset_from == ("train",) else " (of every split: no training label)")
        )
        if rare:
            lines.append(f"  left out as rarer than min_char_count: {rare}")
        if self.failed:
            lines.append(f"  documents that could not be read: {len(self.failed)}")
        return lines


def _labels(
    document: Document, normalization: str | None, mapping: Mapping[str, str]
) -> list[tuple[Line, str | None]]:
    return [
        (
            line,
            None
            if line.text is None
            else normalize_text(line.text, normalization, mapping).strip(),
        )
        for line in document.lines
    ]


def _emptied(name: str, sizes: dict[str, int], fractions: dict[str, float], total: int) -> str:
    """Why a split drawn from the pool has no page: its own fraction is 0, or the fractions drawn
    before it (test, then val; train takes the rest) took every page."""
    if name != "train" and not fractions[name]:
        return f"empty, {name}_fraction is 0"
    if not total:
        return "empty, no page of datamodule.sources is left for it"
    before = ("test",) if name == "val" else ("test", "val")
    took = " and ".join(f"{n}_fraction {fractions[n]:g}" for n in before if sizes.get(n))
    if name == "val":
        return f"empty, {took} took all {total} pages first"
    return (
        f"empty, {took} took all {total} pages (a fraction above 0 takes at least one page): "
        "lower it or give train_sources"
    )


def _texts(labels: list[list[tuple[Line, str | None]]]) -> list[str]:
    return [label for document in labels for _, label in document if label]


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
