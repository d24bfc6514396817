"""The data order: width buckets sharded across processes, set by the seed and the epoch alone,
and resumable in the middle of an epoch."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from text_recognizer.data.sampler import ResumableLoader, WidthBucketSampler

N = 103  # 12 full batches of 8 and a short one
WIDTHS = np.random.default_rng(0).integers(1, 640, N)


def sampler(**kwargs: object) -> WidthBucketSampler:
    options: dict = {"batch_size": 8, "shuffle": True, "seed": 7, **kwargs}
    return WidthBucketSampler(WIDTHS, **options)


def loader(sampler: WidthBucketSampler) -> ResumableLoader:
    return ResumableLoader(TensorDataset(torch.arange(N)), batch_size=8, sampler=sampler)


def served(loader: ResumableLoader) -> list[list[int]]:
    return [batch.tolist() for (batch,) in loader]


def test_the_order_is_set_by_the_seed_and_the_epoch_alone() -> None:
    first, again = sampler(), sampler()
    assert first.batches() == again.batches()
    again.set_epoch(1)
    assert again.batches() != first.batches()
    assert sampler(seed=8).batches() != first.batches()
    assert sampler(shuffle=False).batches() == sampler(shuffle=False, seed=8).batches()


def test_a_loader_cuts_the_index_stream_back_into_the_batches() -> None:
    for epoch in range(3):
        s = sampler()
        s.set_epoch(epoch)
        batches = served(loader(s))
        assert batches == s.batches()
        assert [len(b) for b in batches].count(8) == 12 and len(batches[-1]) == 7
        # Batches are groups of similar width: far narrower spread than random groups.
        spread = np.mean([np.ptp(WIDTHS[b]) for b in batches[:-1]])
        assert spread < 0.3 * np.ptp(WIDTHS)


@pytest.mark.parametrize("replicas", [2, 3, 5])
def test_training_shards_are_disjoint_and_equal_and_cover_every_sample(replicas: int) -> None:
    shards = [sampler(num_replicas=replicas, rank=r) for r in range(replicas)]
    per_rank = [served(loader(s)) for s in shards]
    assert len({len(batches) for batches in per_rank}) == 1  # DDP steps them together
    assert len(per_rank[0]) == -(-13 // replicas)
    everything = [i for batches in per_rank for batch in batches for i in batch]
    assert set(everything) == set(range(N))
    # Only whole batches repeat, to fill: the first ones, as many as the shards lacked.
    repeated = len(per_rank[0]) * replicas - 13
    assert len(everything) == N + sum(len(b) for b in sampler().batches()[:repeated])


@pytest.mark.parametrize("replicas", [2, 3, 5])
def test_evaluation_shards_cover_every_sample_exactly_once(replicas: int) -> None:
    shards = [
        sampler(shuffle=False, equal_shards=False, num_replicas=replicas, rank=r)
        for r in range(replicas)
    ]
    everything = [i for s in shards for batch in served(loader(s)) for i in batch]
    assert sorted(everything) == list(range(N))


def test_every_process_gets_a_batch_of_a_tiny_split() -> None:
    tiny = WidthBucketSampler(
        WIDTHS[:8], 8, shuffle=False, equal_shards=False, num_replicas=2, rank=1
    )
    assert tiny.batches() == WidthBucketSampler(WIDTHS[:8], 8, shuffle=False).batches()


@pytest.mark.parametrize("stop", [1, 5, 12, 13])
def test_a_restored_loader_serves_the_rest_of_the_epoch(stop: int) -> None:
    s = sampler()
    s.set_epoch(2)
    killed = loader(s)
    batches = iter(killed)
    head = [next(batches)[0].tolist() for _ in range(stop)]
    state = killed.state_dict()
    assert state == {"epoch": 2, "batches": stop}

    resumed = loader(sampler())
    resumed.load_state_dict(state)
    assert head + served(resumed) == s.batches()
    # The skip applies once: the next epoch is whole.
    resumed.sampler.set_epoch(3)
    assert len(served(resumed)) == 13


def test_a_state_from_the_end_of_an_epoch_starts_the_next_one_whole() -> None:
    finished = loader(sampler())
    served(finished)
    resumed = loader(sampler())
    resumed.load_state_dict(finished.state_dict())
    resumed.sampler.set_epoch(1)  # what Lightning calls as the next epoch starts
    expected = sampler()
    expected.set_epoch(1)
    assert served(resumed) == expected.batches()
