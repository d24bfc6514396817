"""The order in which a run sees its data: batches of similar width, sharded across processes,
reproducible from the run's seed and the epoch, and resumable in the middle of an epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class WidthBucketSampler(DistributedSampler):
    """Shuffle, sort each pool of `pool_batches` batches by width, cut, shuffle the batches; then
    give each process every `num_replicas`-th batch.

    Each epoch visits every sample once in a random order of batches; only which samples share a
    batch is biased towards similar widths. The order depends on `seed` and the epoch alone, which
    Lightning sets through `set_epoch` (it does so for any `DistributedSampler`, and leaves this
    one in place under DDP instead of injecting its own), so a resumed run sees the same order.

    It yields indices: consecutive runs of `batch_size` are the batches (only the last one of an
    epoch can be short), so a DataLoader with the same `batch_size` cuts them back exactly.
    With `equal_shards` (training) every process gets as many batches, the first ones repeated
    to fill, since DDP steps all processes together; without (evaluation) the shards are disjoint
    and cover the split exactly once, so metrics summed over processes count every sample once.
    """

    def __init__(
        self,
        widths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        equal_shards: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        pool_batches: int = 50,
    ) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        super().__init__(
            cast("Dataset[int]", widths),  # only its length is used
            num_replicas=num_replicas if num_replicas is not None or distributed else 1,
            rank=rank if rank is not None or distributed else 0,
            shuffle=shuffle,
            seed=seed,
        )
        self.widths = widths
        self.batch_size = batch_size
        self.equal_shards = equal_shards
        self.pool = batch_size * pool_batches
        self.start = 0  # batches of the current epoch to skip once: a resumed run's position

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0
        super().set_epoch(epoch)

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.widths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches = []
        for start in range(0, n, self.pool):
            pool = order[start : start + self.pool]
            pool = pool[np.argsort(self.widths[pool], kind="stable")]
            batches += [
                pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)
            ]
        # Only the last pool's last batch can be short; it stays last so the batches cut back
        # exactly.
        full = [batch for batch in batches if len(batch) == self.batch_size]
        if self.shuffle:
            rng.shuffle(full)
        return full + [batch for batch in batches if len(batch) < self.batch_size]

    def batches(self) -> list[list[int]]:
        """This process's batches of the current epoch."""
        batches = self._all_batches()
        shards = self.num_replicas
        # Without equal shards, only a process that would get no batch at all gets one (it
        # would stall the others); that happens to tiny splits only.
        fill = -len(batches) % shards if self.equal_shards else max(0, shards - len(batches))
        batches += (batches * shards)[:fill]
        return batches[self.rank :: shards]

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0
        for batch in self.batches()[start:]:
            yield from batch

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.batches())


class ResumableLoader(DataLoader):
    """A DataLoader that knows how far into its epoch it is, so a run killed mid-epoch resumes
    exactly.

    On a mid-epoch restart Lightning draws a fresh iterator but counts from the batch it stopped
    at, so the rest of the epoch would repeat the epoch's first batches and never reach its last.
    This loader records the epoch and how many batches it served; restored, its sampler skips
    them. (Having a state also tells Lightning it is resumable; see BaseDataModule.state_dict
    for how the state comes back.)
    """

    _served = (0, 0)  # (epoch, batches of it served)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # A generator, so the sampler's epoch is read when the first batch is drawn: on resume,
        # Lightning makes the iterator before `set_epoch`, and workers would draw indices at once.
        epoch = served = 0
        if isinstance(self.sampler, WidthBucketSampler):
            epoch, served = self.sampler.epoch, self.sampler.start
        self._served = (epoch, served)
        for batch in super().__iter__():
            served += 1
            self._served = (epoch, served)
            yield batch

    def state_dict(self) -> dict[str, int]:
        epoch, served = self._served
        return {"epoch": epoch, "batches": served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, WidthBucketSampler):
            self.sampler.set_epoch(state["epoch"])
            self.sampler.start = state["batches"]
