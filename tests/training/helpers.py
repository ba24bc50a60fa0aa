"""Small, deterministic stand-ins for a data module's loaders, and a tiny model, for the trainer's tests."""

from __future__ import annotations

import torch

from mamba_lm.config import MambaConfig
from mamba_lm.models import MambaLMHeadModel

VOCAB = 32
SEQLEN = 16


class CountingLoader:
    """Infinite batches of 'count up by a per-row stride' rows: learnable, deterministic in (seed, position).

    Each process (rank) draws from its own stream. ``state_dict`` is the position, like a real
    loader's resumable state; ``seen`` records the first token of every row served (for tests).
    """

    def __init__(
        self, batch_size: int, seed: int = 0, rank: int = 0, vocab: int = VOCAB, seqlen: int = SEQLEN
    ):
        self.batch_size, self.seed, self.rank, self.vocab, self.seqlen = batch_size, seed, rank, vocab, seqlen
        self.position = 0
        self.seen: list[int] = []

    def batch_at(self, position: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7919 + position)
        start = torch.randint(0, self.vocab, (self.batch_size, 1), generator=generator)
        stride = torch.randint(1, 4, (self.batch_size, 1), generator=generator)
        tokens = (start + stride * torch.arange(self.seqlen + 1)) % self.vocab
        return {"input_ids": tokens[:, :-1].contiguous(), "labels": tokens[:, 1:].contiguous()}

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = self.batch_at(self.position)
        self.position += 1
        self.seen.extend(batch["input_ids"][:, 0].tolist())
        return batch

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


def validation_batches(batch_size: int, count: int = 2):
    """A fresh finite validation iterable (positions far from the training stream's)."""
    loader = CountingLoader(batch_size, seed=12345)
    return [loader.batch_at(10_000 + i) for i in range(count)]


def tiny_mamba(seed: int = 0, vocab: int = VOCAB) -> MambaLMHeadModel:
    torch.manual_seed(seed)
    return MambaLMHeadModel(MambaConfig(d_model=16, n_layer=2, vocab_size=vocab))
