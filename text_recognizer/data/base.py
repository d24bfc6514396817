"""What every datamodule shares: split datasets, loaders, the tokenizer, a look at the data."""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import DataLoader, Dataset, default_collate

from text_recognizer.data.sampler import ResumableLoader, WidthBucketSampler
from text_recognizer.data.transforms import EvalTransform, ImageStem, Resize, crop_to_content
from text_recognizer.io import atomic_path
from text_recognizer.tokenizer import Tokenizer


def run_seed() -> int:
    """The run's seed, which `seed_everything` exports (0 outside a run)."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class ImageTextDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images held in memory as uint8, with their texts encoded once as padded token rows."""

    def __init__(
        self, images: np.ndarray, texts: list[str], stem: ImageStem, targets: torch.Tensor
    ) -> None:
        if len(images) != len(texts) or len(texts) != len(targets):
            raise ValueError(f"{len(images)} images, {len(texts)} texts, {len(targets)} targets")
        self.images = images
        self.texts = texts
        self.targets = targets
        self.stem = stem
        self.widths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stem(self.images[index]), self.targets[index]


PAGE_PAPER = 64  # the most rows of paper a training batch of pages keeps below its text


def collate_cropped(
    samples: list[tuple[torch.Tensor, torch.Tensor]],
    columns: bool = True,
    rows: bool = False,
    paper: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack a batch, then drop the paper columns all its images share on the right and, with
    `rows`, the paper rows they share at the bottom, keeping up to `paper` of them.

    Training pages keep a random strip of that paper: a page reader that only ever saw its text
    end at the bottom edge stops reading there, and one that always saw paper below is lost
    without it (see `text_recognizer.data.pages.curriculum`). The strip is drawn from the batch's
    labels, so a resumed run crops as the uninterrupted one did.
    """
    images, targets = default_collate(samples)
    cropped = crop_to_content(images, columns=columns, rows=rows)
    if rows and paper:
        drawn = torch.Generator().manual_seed(int(targets.sum()))
        height = min(
            images.shape[-2],
            cropped.shape[-2] + int(torch.randint(paper + 1, (1,), generator=drawn)),
        )
        cropped = images[..., :height, : cropped.shape[-1]]
    return cropped, targets


class BaseDataModule(pl.LightningDataModule):
    """Loaders over `data_train`, `data_val`, `data_test`, which subclasses fill in `setup`.

    `resize` is the stem's rule (see `ImageStem`): lines are read at the network's height;
    page datamodules set `shrink`, so their writing keeps its scale. Batches are cropped to
    their content's width with `crop_width`, and also to its height with `crop_height` (pages).
    Validation and test read batches of `eval_batch_size` (default: `batch_size`): decoding goes
    a token at a time, so a small training batch would leave it waiting on each step for a few
    lines.
    """

    resize: ClassVar[Resize] = "height"

    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        height: int,
        width: int,
        max_output_length: int,
        crop_width: bool = False,
        crop_height: bool = False,
        eval_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if eval_batch_size is not None and eval_batch_size <= 0:
            raise ValueError(f"eval_batch_size must be positive, got {eval_batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.stem = ImageStem(height, width, self.resize)
        self.max_output_length = max_output_length
        self.crop_width = crop_width
        self.crop_height = crop_height
        self.tokenizer = Tokenizer()
        self.data_train: ImageTextDataset
        self.data_val: ImageTextDataset
        self.data_test: ImageTextDataset
        self._train_position: dict[str, int] | None = None

    @property
    def input_dims(self) -> tuple[int, int, int]:
        return (1, self.stem.height, self.stem.width)

    def dataset(self, images: np.ndarray, texts: list[str]) -> ImageTextDataset:
        encoded = [self.tokenizer.encode(t, self.max_output_length) for t in texts]
        targets = (
            torch.stack(encoded)
            if encoded
            else torch.empty(0, self.max_output_length, dtype=torch.long)
        )
        return ImageTextDataset(images, texts, self.stem, targets)

    def _sampler(self, dataset: ImageTextDataset, train: bool) -> WidthBucketSampler:
        """Training batches are shuffled by the run's seed (`seed_everything` exports it) and the
        epoch; every split is sharded across DDP processes by the sampler itself."""
        widths = np.zeros(len(dataset), dtype=np.int64)  # all alike: plain shuffled batches
        if self.crop_width:  # lines by width, pages by height (EvalTransform.extents)
            if dataset.widths is None:
                dataset.widths = self.eval_transform.extents(dataset.images)
            widths = dataset.widths
        batch_size = self.batch_size if train else self.eval_batch_size
        return WidthBucketSampler(
            widths, batch_size, shuffle=train, seed=run_seed(), equal_shards=train
        )

    def _loader(self, dataset: ImageTextDataset, train: bool) -> ResumableLoader:
        cropping = self.crop_width or self.crop_height
        return ResumableLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=self._sampler(dataset, train),
            collate_fn=(
                partial(
                    collate_cropped,
                    columns=self.crop_width,
                    rows=self.crop_height,
                    paper=PAGE_PAPER if train else 0,
                )
                if cropping
                else None
            ),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.data_train, train=True)
        if self._train_position is not None:
            loader.load_state_dict(self._train_position)
            self._train_position = None
        return loader

    def state_dict(self) -> dict[str, Any]:
        """Where training stands in its epoch, so a resumed run goes on with the next batch.

        Lightning also saves the train loader's own state, but never hands it back when the LR
        schedule asks for `trainer.estimated_stepping_batches`: that builds the loader before the
        checkpoint's loop state is restored. The datamodule's state is restored before that.
        """
        loader = self.trainer.train_dataloader if self.trainer else None
        if not isinstance(loader, ResumableLoader):
            return {}
        return {"train_position": loader.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._train_position = state.get("train_position")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, train=False)

    def splits(self) -> dict[str, ImageTextDataset]:
        return {"train": self.data_train, "val": self.data_val, "test": self.data_test}

    def groups(self, split: str) -> list[str] | None:
        """A group name per sample of `split` (the font family, for synthetic lines), so that
        evaluation can report the error per group; None when the data has no such groups."""
        return None

    @property
    def paths(self) -> list[Path]:
        """The processed files it reads, each written whole (so one that exists is built): what
        `text-recognizer-data generate` looks for and `describe` names."""
        return []

    def details(self) -> list[str]:
        """What `describe` says of the data beyond its splits (fonts, pages, skipped lines)."""
        return []

    def describe(self) -> str:
        """Sizes, shapes, label lengths and charset coverage per split, the `details`, and the
        files it reads."""
        lines = [
            f"{type(self).__name__}: input {self.input_dims}, "
            f"max output length {self.max_output_length} tokens"
        ]
        charset = set(self.tokenizer.charset)
        for name, data in self.splits().items():
            lengths = np.array([len(t) for t in data.texts] or [0])
            counts = Counter("".join(data.texts))
            missing = "".join(sorted(charset - set(counts)))
            rarest = ", ".join(
                f"{c!r}:{n}" for c, n in sorted(counts.items(), key=lambda x: x[1])[:5]
            )
            lines.append(
                f"  {name:5s} {len(data):6d} samples | label length mean {lengths.mean():.1f} "
                f"max {lengths.max()} | charset {len(charset & set(counts))}/{len(charset)}"
                + (f" missing {missing!r}" if missing else "")
                + f" | rarest {rarest}"
            )
        files = [f"  file: {path}" for path in self.paths]
        return "\n".join([*lines, *self.details(), *files])

    @property
    def eval_transform(self) -> EvalTransform:
        """What validation and test apply to an image; inference applies the same."""
        stem = self.stem
        return EvalTransform(
            stem.height, stem.width, self.crop_width, stem.resize, self.crop_height
        )

    def save_grid(self, path: Path, split: str = "train", count: int = 16) -> Path:
        """A PNG of `count` samples of `split`, each above its text, to look at the data."""
        data = self.splits()[split]
        chosen = np.linspace(0, len(data) - 1, min(count, len(data))).astype(int)
        return save_captioned_grid(path, [(data.images[i], [data.texts[i]]) for i in chosen])


def save_captioned_grid(path: Path, rows: list[tuple[np.ndarray, list[str]]]) -> Path:
    """A PNG of uint8 images stacked top to bottom, each above its caption lines (a page's text
    a line of the caption for each of its lines), written atomically."""
    font = ImageFont.load_default(14)
    strips = []
    for pixels, captions in rows:
        image = Image.fromarray(pixels).convert("L")
        lines = [line for caption in captions for line in caption.split("\n")]
        label = Image.new("L", (image.width, 4 + 16 * len(lines)), 255)
        for n, line in enumerate(lines):
            ImageDraw.Draw(label).text((2, 2 + 16 * n), line, font=font, fill=0)
        strips += [np.asarray(image), np.asarray(label)]
    width = max(s.shape[1] for s in strips)
    grid = np.concatenate(
        [np.pad(s, ((0, 0), (0, width - s.shape[1])), constant_values=255) for s in strips]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return path
