"""The shared sampler: permutations are bijections, ranks are disjoint, resume is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mamba_lm.data.sampling import EpochSampler, RandomPermutation, SequentialBatches


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 1000, 4097])
def test_random_permutation_is_a_bijection(size):
    permutation = RandomPermutation(size, seed=(7, 0))
    values = permutation(np.arange(size))
    assert sorted(values.tolist()) == list(range(size))
    assert np.array_equal(values, RandomPermutation(size, seed=(7, 0))(np.arange(size)))
    if size >= 64:
        assert not np.array_equal(values, np.arange(size))
        assert not np.array_equal(values, RandomPermutation(size, seed=(7, 1))(np.arange(size)))


def test_random_permutation_rejects_out_of_range_positions():
    with pytest.raises(IndexError):
        RandomPermutation(10, 0)(np.array([10]))


def run(sampler: EpochSampler, steps: int) -> list[list[int]]:
    return [sampler.next_indices().tolist() for _ in range(steps)]


def test_each_epoch_visits_items_once_in_a_new_order():
    sampler = EpochSampler(num_items=103, batch_size=5, seed=3)
    assert sampler.steps_per_epoch == 20
    epochs = [sum(run(sampler, 20), []) for _ in range(2)]
    for order in epochs:
        assert len(set(order)) == 100 and max(order) < 103
    assert epochs[0] != epochs[1]
    assert sampler.state_dict()["epoch"] == 1


def test_ranks_read_disjoint_slices_of_each_global_batch():
    ranks = [EpochSampler(50, 4, seed=1, rank=r, world_size=3) for r in range(3)]
    single = EpochSampler(50, 12, seed=1)
    for _ in range(9):  # crosses an epoch boundary (4 steps per epoch)
        parts = [r.next_indices().tolist() for r in ranks]
        assert not set(parts[0]) & set(parts[1]) and not set(parts[1]) & set(parts[2])
        assert sum(parts, []) == single.next_indices().tolist()
    assert ranks[0].state_dict() == ranks[2].state_dict()


def test_resume_from_a_saved_state_reproduces_the_sequence():
    straight = EpochSampler(37, 4, seed=5)
    expected = run(straight, 25)
    first = EpochSampler(37, 4, seed=5)
    head = run(first, 11)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = EpochSampler(37, 4, seed=5)
    resumed.load_state_dict(state)
    assert head + run(resumed, 14) == expected


def test_a_state_from_other_data_is_refused():
    state = EpochSampler(37, 4, seed=5).state_dict()
    with pytest.raises(ValueError, match="num_items"):
        EpochSampler(38, 4, seed=5).load_state_dict(state)
    with pytest.raises(ValueError, match="seed"):
        EpochSampler(37, 4, seed=6).load_state_dict(state)


def test_too_little_data_for_one_global_batch_is_an_error():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochSampler(7, 4, seed=0, world_size=2)


def test_sequential_batches_split_ranks_and_cover_everything():
    seen = []
    for rank in range(3):
        batches = list(SequentialBatches(10, 3, lambda i: i.tolist(), rank, 3))
        assert batches == list(SequentialBatches(10, 3, lambda i: i.tolist(), rank, 3))
        seen += sum(batches, [])
    assert seen == list(range(10))
