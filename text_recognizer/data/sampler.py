"""Batches of lines of similar width, so cropping a batch to its widest line saves real work."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


def content_widths(images: np.ndarray, contrast: int = 76) -> np.ndarray:
    """Rightmost ink column + 1 of each (n, h, w) uint8 dark-on-light image (0 for blank)."""
    widths = np.zeros(len(images), dtype=np.int64)
    for start in range(0, len(images), 1024):
        chunk = images[start : start + 1024]
        paper = np.median(chunk.reshape(len(chunk), -1), axis=1)[:, None, None]
        ink = (chunk.astype(np.int16) < paper - contrast).any(axis=1)
        last = ink.shape[1] - np.argmax(ink[:, ::-1], axis=1)
        widths[start : start + len(chunk)] = np.where(ink.any(axis=1), last, 0)
    return widths


class WidthBucketSampler(Sampler[list[int]]):
    """Shuffle, sort each pool of `pool_batches` batches by width, cut, shuffle the batches.

    Each epoch still visits every sample once in a random order of batches; only which samples
    share a batch is biased towards similar widths.
    """

    def __init__(
        self,
        widths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool_batches: int = 50,
    ) -> None:
        self.widths = widths
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.widths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.widths)) if self.shuffle else np.arange(len(self.widths))
        batches = []
        for start in range(0, len(order), self.pool):
            pool = order[start : start + self.pool]
            pool = pool[np.argsort(self.widths[pool], kind="stable")]
            batches += [
                pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)
            ]
        if self.shuffle:
            rng.shuffle(batches)
        yield from batches
