"""Deterministic, resumable batch order shared by every loader in ``data``.

A training loader is an :class:`EpochSampler` (which item indices each rank reads at each
step) plus a ``fetch`` function (indices -> batch dict). The order of epoch ``e`` is a
pseudo-random permutation keyed by ``(seed, e)``; its state is just ``(epoch, offset)``, so a
resumed run draws exactly the batches the uninterrupted run would have drawn, and every rank
holds the same state. Ranks read disjoint slices of each global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

Batch = dict[str, Any]
STATE_FORMAT = "epoch_sampler/1"


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a well-mixed 64-bit hash of each uint64 element."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


class RandomPermutation:
    """A keyed pseudo-random bijection of ``range(size)`` that needs O(1) memory.

    A 4-round Feistel network on the smallest ``4**k >= size`` values, with cycle walking to
    stay below ``size``; so shuffling 10^9 blocks costs no permutation array.
    """

    def __init__(self, size: int, seed: int | Sequence[int]):
        if size < 1:
            raise ValueError(f"cannot permute {size} items")
        self.size = size
        self._half_bits = max(1, ((size - 1).bit_length() + 1) // 2)
        self._mask = np.uint64((1 << self._half_bits) - 1)
        self._keys = np.random.default_rng(seed).integers(0, 2**63, size=4, dtype=np.uint64)

    def _encrypt(self, values: np.ndarray) -> np.ndarray:
        shift = np.uint64(self._half_bits)
        left, right = values >> shift, values & self._mask
        for key in self._keys:
            left, right = right, left ^ (_mix(right ^ key) & self._mask)
        return (left << shift) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Map positions (int array, values in [0, size)) to permuted indices (int64, same shape)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self.size):
            raise IndexError(f"positions must lie in [0, {self.size})")
        out = self._encrypt(positions.astype(np.uint64))
        outside = out >= self.size
        while outside.any():
            out[outside] = self._encrypt(out[outside])
            outside = out >= self.size
        return out.astype(np.int64)


class EpochSampler:
    """Infinite sequence of per-rank index batches over ``num_items`` items, epoch after epoch.

    Each step consumes one global batch of ``batch_size * world_size`` items of the epoch's
    order; rank ``r`` gets the ``r``-th slice. An epoch ends when fewer items than a global
    batch remain (they are skipped, as with ``drop_last``).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        what: str = "items",
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size={world_size}), got {rank}")
        if num_items < batch_size * world_size:
            raise ValueError(
                f"the training split has {num_items} {what}, fewer than one global batch of "
                f"{batch_size} x {world_size} ranks; use a smaller batch size or sequence length or more data"
            )
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch, self.offset = 0, 0
        self._permutation: RandomPermutation | None = None

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.num_items // self.global_batch

    def _order(self) -> RandomPermutation:
        if self._permutation is None:
            self._permutation = RandomPermutation(self.num_items, (self.seed, self.epoch))
        return self._permutation

    def next_indices(self) -> np.ndarray:
        """Item indices (int64, shape (batch_size,)) this rank reads at the next step."""
        if self.offset + self.global_batch > self.num_items:
            self.epoch, self.offset, self._permutation = self.epoch + 1, 0, None
        positions = self.offset + self.rank * self.batch_size + np.arange(self.batch_size)
        self.offset += self.global_batch
        return self._order()(positions) if self.shuffle else positions

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable position: identical on every rank."""
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "offset": self.offset,
            "seed": self.seed,
            "num_items": self.num_items,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; the global batch size may differ from the saved run's."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a data loader state of format {STATE_FORMAT!r}: {state!r}")
        for key in ("seed", "num_items", "shuffle"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"loader state does not match this data: saved {key}={state[key]!r}, "
                    f"now {key}={getattr(self, key)!r} (a different seed or dataset?)"
                )
        self.epoch, self.offset, self._permutation = int(state["epoch"]), int(state["offset"]), None


class ResumableLoader:
    """Iterator of batches ``fetch(indices)`` driven by an :class:`EpochSampler`; resumable."""

    def __init__(self, sampler: EpochSampler, fetch: Callable[[np.ndarray], Batch]):
        self.sampler, self.fetch = sampler, fetch

    def __iter__(self) -> ResumableLoader:
        return self

    def __next__(self) -> Batch:
        return self.fetch(self.sampler.next_indices())

    def state_dict(self) -> dict[str, Any]:
        """Position after the batches returned so far (JSON-serializable)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the run that saved ``state`` stood."""
        self.sampler.load_state_dict(state)


class SequentialBatches:
    """Finite, deterministic iterable over ``num_items`` items in order, split across ranks.

    Rank ``r`` reads the ``r``-th contiguous share; the last batch may be smaller. Each call
    to ``iter`` starts afresh.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        fetch: Callable[[np.ndarray], Batch],
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.start = rank * num_items // world_size
        self.stop = (rank + 1) * num_items // world_size
        self.batch_size, self.fetch = batch_size, fetch

    def __len__(self) -> int:
        return -(-(self.stop - self.start) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for begin in range(self.start, self.stop, self.batch_size):
            yield self.fetch(np.arange(begin, min(begin + self.batch_size, self.stop)))
