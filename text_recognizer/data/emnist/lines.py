"""EMNIST lines: sentences written with EMNIST characters that touch and overlap.

A line reader must learn to segment characters; EMNIST characters composed with random overlap and
spacing jitter teach that cheaply. Sentences come from NLTK's Brown corpus when nltk and the
corpus are installed (`make download` fetches it), otherwise from the offline text source of the
synthetic lines; either way only what EMNIST can draw (letters, digits, spaces) is kept. Training
lines use EMNIST's training characters; validation and test split its test characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.emnist import characters
from text_recognizer.data.paths import data_root
from text_recognizer.data.processed import SPLITS, ProcessedFile, Writer, write_split
from text_recognizer.data.processed_datamodule import ProcessedDataModule
from text_recognizer.data.synthetic.text import sample_line
from text_recognizer.data.transforms import ImageStem
from text_recognizer.metadata import emnist as metadata

FORMAT_VERSION = 1
SPACING_JITTER = 0.1  # each step varies by up to this share of a character's width


def nltk_folder(root: Path | None = None) -> Path:
    return (root or data_root()) / "downloaded" / "nltk"


def download_brown(root: Path | None = None) -> str:
    """Fetch the Brown corpus if nltk is installed; say what happened either way."""
    try:
        import nltk
    except ImportError:
        return "brown: nltk is not installed, EMNIST lines use the offline text source"
    folder = nltk_folder(root)
    if nltk.download("brown", download_dir=str(folder), quiet=True, raise_on_error=True):
        return f"brown: corpus ready in {folder}"
    raise RuntimeError(f"brown: nltk could not download the corpus into {folder}")


@cache
def brown_sentences(folder: Path) -> tuple[str, ...] | None:
    """Brown corpus sentences, or None without nltk or the downloaded corpus."""
    try:
        import nltk
    except ImportError:
        return None
    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))
    try:
        return tuple(" ".join(words) for words in nltk.corpus.brown.sents())
    except LookupError:
        return None


def clean(text: str, drawable: frozenset[str]) -> str:
    """Only what EMNIST can draw, single spaces."""
    return " ".join("".join(c for c in text if c in drawable or c == " ").split())


def window(text: str, rng: np.random.Generator, max_length: int) -> str:
    """Consecutive words from a random one on, as many as fit `max_length`."""
    words = text.split()
    start = int(rng.integers(len(words)))
    line = words[start][:max_length]
    for word in words[start + 1 :]:
        if len(line) + 1 + len(word) > max_length:
            break
        line += " " + word
    return line


def sample_text(
    rng: np.random.Generator,
    max_length: int,
    drawable: frozenset[str],
    sentences: tuple[str, ...] | None,
) -> str:
    while True:
        if sentences:
            text = clean(sentences[int(rng.integers(len(sentences)))], drawable)
            text = window(text, rng, max_length) if text else ""
        else:
            text = clean(sample_line(rng, max_length), drawable)
        if text:
            return text


def compose(
    text: str,
    images: np.ndarray,
    by_char: dict[str, np.ndarray],
    rng: np.random.Generator,
    overlap: float,
) -> np.ndarray:
    """`text` as EMNIST characters side by side, `overlap` of each one's width overlapping the
    previous (ink combined: the darker pixel wins); a space advances without drawing."""
    size = metadata.CHAR_SIZE
    steps = size * (1 - overlap) * rng.uniform(1 - SPACING_JITTER, 1 + SPACING_JITTER, len(text))
    lefts = np.concatenate([[0.0], np.cumsum(steps[:-1])]).round().astype(int)
    canvas = np.full((size, int(lefts[-1]) + size), 255, dtype=np.uint8)
    for char, left in zip(text, lefts, strict=True):
        if char != " ":
            region = canvas[:, left : left + size]
            np.minimum(region, images[rng.choice(by_char[char])], out=region)
    return canvas


class EMNISTLines(ProcessedDataModule):
    """Composed once into `<data root>/processed/emnist_lines/lines-<digest>.h5`, with
    emnist_lines.yaml's values."""

    sample = "EMNIST line"

    def __init__(
        self,
        *,
        batch_size: int,
        num_workers: int,
        eval_batch_size: int | None,
        train_size: int,
        val_size: int,
        test_size: int,
        max_length: int,
        min_overlap: float,
        max_overlap: float,
        height: int,
        width: int,
        seed: int,
    ) -> None:
        super().__init__(
            batch_size, num_workers, height, width, max_length + 2, eval_batch_size=eval_batch_size
        )
        if not 0 <= min_overlap <= max_overlap < 1:
            raise ValueError(
                f"need 0 <= min_overlap <= max_overlap < 1, got {min_overlap}, {max_overlap}"
            )
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.max_length = max_length
        self.overlap = (min_overlap, max_overlap)
        self.seed = seed

    def file(self) -> ProcessedFile:
        source = "brown" if brown_sentences(nltk_folder()) else "offline"
        params = (self.sizes, self.max_length, self.overlap, self.seed, source)
        emnist_key = characters.characters_file().digest
        parts = (FORMAT_VERSION, emnist_key, self.stem.height, self.stem.width, *params)
        return ProcessedFile("emnist_lines", "lines", parts)

    def writer(self) -> Writer:
        """Lines of the EMNIST characters: training ones from its training characters,
        validation and test from alternate test characters."""
        loaded = characters.load()
        test_images, test_chars = loaded["test"]
        sources = {
            "train": loaded["train"],
            "val": (test_images[0::2], test_chars[0::2]),
            "test": (test_images[1::2], test_chars[1::2]),
        }
        sentences = brown_sentences(nltk_folder())

        def write(f: h5py.File) -> None:
            for split in SPLITS:
                images, chars = sources[split]
                size = self.sizes[split]
                samples = self._samples(split, images, chars, size, sentences)
                write_split(f, split, size, (self.stem.height, self.stem.width), samples)

        return write

    def _samples(
        self,
        split: str,
        images: np.ndarray,
        chars: np.ndarray,
        size: int,
        sentences: tuple[str, ...] | None,
    ) -> Iterator[tuple[np.ndarray, str, str]]:
        by_char = {str(c): np.flatnonzero(chars == c) for c in np.unique(chars)}
        drawable = frozenset(by_char)
        rng = np.random.default_rng([self.seed, SPLITS.index(split)])
        stem = ImageStem(self.stem.height, self.stem.width)
        for i in tqdm(range(size), desc=f"emnist lines {split}", unit="line"):
            text = sample_text(rng, self.max_length, drawable, sentences)
            line = compose(text, images, by_char, rng, rng.uniform(*self.overlap))
            yield stem.fit(line), text, f"{split}-{i}"
