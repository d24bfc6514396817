"""Render the synthetic lines once into an h5 file under the data root.

The file name carries a digest of every parameter that changes its bytes, so a changed config
writes a new file instead of silently reusing a stale one, and the same config is never rendered
twice. Work is split into chunks seeded by (seed, split, chunk), so the bytes do not depend on the
number of worker processes, nor on whether there are any.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from text_recognizer.data.paths import atomic_path, data_root, exclusive
from text_recognizer.data.synthetic import corpus, pool
from text_recognizer.data.synthetic.fonts import Font, load_fonts, pool_families
from text_recognizer.data.synthetic.render import Augmentation, render_line
from text_recognizer.data.synthetic.text import sample_line

FORMAT_VERSION = 3  # bump when rendering changes, so old files are not mistaken for new ones
SPLITS = ("train", "val", "test")
CHUNK = 200
MAX_TRIES = (
    200  # texts that fail to render, per line, before a font is declared unable to draw the charset
)


@dataclass(frozen=True, kw_only=True)
class SyntheticLinesConfig:
    """Everything that determines the generated file's bytes. No defaults: the values are
    synthetic_lines.yaml's, which `SyntheticLines` passes on."""

    train_size: int
    val_size: int
    test_size: int
    height: int
    width: int
    max_text_length: int
    seed: int
    augmentation_strength: float
    augmentations: Sequence[str]
    # The fraction of lines cut from English sentences (`corpus`), where the corpus is present.
    sentences: float
    # None: every family of the pool's split that is present (see fonts.pool_families).
    train_families: Sequence[str] | None
    heldout_families: Sequence[str] | None
    font_folders: Sequence[str]
    heldout_font_folders: Sequence[str]

    def __post_init__(self) -> None:
        Augmentation(kinds=frozenset(self.augmentations))  # refuses an unknown kind, naming it
        if not 0 <= self.sentences <= 1:
            raise ValueError(f"sentences is a fraction of the lines, got {self.sentences}")
        for name in ("train_size", "val_size", "test_size", "height", "width", "max_text_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def size(self, split: str) -> int:
        return int(getattr(self, f"{split}_size"))

    def families(self, split: str) -> tuple[str, ...]:
        chosen = self.train_families if split == "train" else self.heldout_families
        if chosen is None:
            return pool_families("train" if split == "train" else "heldout")
        return tuple(chosen)

    def fonts(self, split: str) -> list[Font]:
        folders = self.font_folders if split == "train" else self.heldout_font_folders
        return load_fonts(self.families(split), folders)

    def text_sentences(self) -> float:
        """The fraction of sentence lines this machine can draw: none without the corpus."""
        return self.sentences if self.sentences and corpus.path().is_file() else 0.0

    def digest(self) -> str:
        """Covers the parameters and the bytes of every font and text used, so the file names
        its pool."""
        params = {
            k: list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
            for k, v in dataclasses.asdict(self).items()
        }
        fonts = {
            split: [(f.path.name, pool.sha256(f.path)) for f in self.fonts(split)]
            for split in ("train", "val")
        }
        text = corpus.sha256() if self.text_sentences() else None
        blob = json.dumps(
            [FORMAT_VERSION, params, fonts, *([text] if text else [])], sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def path(self, root: Path | None = None) -> Path:
        return (root or data_root()) / "processed" / "synthetic_lines" / f"lines-{self.digest()}.h5"


# A chunk to render (config, split, start, count), and the images, texts and font ids it yields.
Task = tuple[SyntheticLinesConfig, str, int, int]
Chunk = tuple[np.ndarray, list[str], list[int]]
Mapper = Callable[[Callable[[Task], Chunk], Iterable[Task]], Iterator[Chunk]]


def _render_chunk(args: Task) -> Chunk:
    """Render `count` lines of `split` starting at `start`, seeded by the chunk alone.

    Each line picks a family uniformly, then one of its files, so families with many weights
    are not over-represented.
    """
    config, split, start, count = args
    fonts = config.fonts(split)
    rng = np.random.default_rng([config.seed, SPLITS.index(split), start])
    aug = Augmentation(strength=config.augmentation_strength, kinds=frozenset(config.augmentations))
    sentences = config.text_sentences()
    images = np.empty((count, config.height, config.width), dtype=np.uint8)
    texts, font_ids = [], []
    families = sorted({font.family for font in fonts})
    for i in range(count):
        family = families[int(rng.integers(len(families)))]
        font_id = int(rng.choice([j for j, font in enumerate(fonts) if font.family == family]))
        font = fonts[font_id]
        max_length = config.max_text_length
        failures = 0
        while True:
            text = sample_line(rng, max_length, sentences, heldout=split != "train")
            if font.uppercase_only:
                text = text.upper()
            if not font.can_draw(text):
                continue
            image = render_line(text, font, rng, config.height, config.width, aug)
            if image is not None:
                break
            failures += 1
            if failures == MAX_TRIES:
                raise ValueError(
                    f"font {font.path} drew no line of the charset in {MAX_TRIES} tries: "
                    "leave it out of the font folders or the families"
                )
            max_length = max(4, int(len(text) * 0.8))
        images[i] = image
        texts.append(text)
        font_ids.append(font_id)
    return images, texts, font_ids


def is_complete(path: Path, config: SyntheticLinesConfig) -> bool:
    """True only for a file that finished writing with this config; anything else is redone."""
    try:
        with h5py.File(path, "r") as f:
            return bool(
                f.attrs.get("digest") == config.digest()
                and all(f[split]["images"].shape[0] == config.size(split) for split in SPLITS)
                and all(len(f[split]["texts"]) == config.size(split) for split in SPLITS)
            )
    except (OSError, KeyError):
        return False


def generate(
    config: SyntheticLinesConfig, root: Path | None = None, workers: int | None = None
) -> Path:
    """Write the dataset for `config` unless a complete one exists; return its path."""
    path = config.path(root)
    if is_complete(path, config):  # no lock needed: a read-only data root that has it works
        return path
    with exclusive(path):
        if is_complete(path, config):
            return path
        if config.sentences and not config.text_sentences():
            print(f"text: {corpus.path()} is missing (`make fonts` fetches it): no sentences")
        for split in SPLITS:
            for font in config.fonts(split):
                if font.missing:
                    print(
                        f"font {font.name} cannot draw {''.join(sorted(font.missing))!r}: "
                        "its lines avoid those characters"
                    )
        # A split's chunks are rendered side by side: more workers than the most would idle.
        chunks = max(math.ceil(config.size(split) / CHUNK) for split in SPLITS)
        workers = workers or min(multiprocessing.cpu_count(), 8, chunks)
        started = time.perf_counter()
        total = sum(config.size(s) for s in SPLITS)
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["config"] = json.dumps(dataclasses.asdict(config), default=list)
            with (
                _mapper(workers) as imap,
                tqdm(total=total, desc=f"rendering {path.name}", unit="line") as bar,
            ):
                for split in SPLITS:
                    _write_split(f, config, split, imap, bar)
            f.attrs["digest"] = config.digest()
        seconds = time.perf_counter() - started
        print(f"wrote {total} lines to {path} in {seconds:.1f} s ({total / seconds:.0f} lines/s)")
    return path


@contextlib.contextmanager
def _mapper(workers: int) -> Iterator[Mapper]:
    """`imap` over `workers` spawned processes, or with one, this process's `map`: a spawned
    worker imports the library afresh, seconds that a dataset of a chunk a split never earns."""
    if workers == 1:
        yield map
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool.imap


def _write_split(
    f: h5py.File, config: SyntheticLinesConfig, split: str, imap: Mapper, bar: tqdm
) -> None:
    size = config.size(split)
    group = f.create_group(split)
    group.attrs["fonts"] = json.dumps([font.name for font in config.fonts(split)])
    group.attrs["families"] = json.dumps([font.family for font in config.fonts(split)])
    images = group.create_dataset(
        "images",
        (size, config.height, config.width),
        dtype=np.uint8,
        chunks=(min(size, 64), config.height, config.width),
        compression="lzf",
    )
    texts: list[str] = []
    font_ids: list[int] = []
    tasks = [(config, split, start, min(CHUNK, size - start)) for start in range(0, size, CHUNK)]
    for (_, _, start, count), (chunk, chunk_texts, chunk_fonts) in zip(
        tasks, imap(_render_chunk, tasks), strict=True
    ):
        images[start : start + count] = chunk
        texts += chunk_texts
        font_ids += chunk_fonts
        bar.update(count)
    group.create_dataset("texts", data=np.array(texts, dtype=h5py.string_dtype()))
    group.create_dataset("font_ids", data=np.array(font_ids, dtype=np.int16))
