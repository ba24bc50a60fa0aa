"""Synthetic tasks as a data module: examples generated on the fly, reproducibly.

Example ``e`` of the training stream is drawn from ``np.random.default_rng([seed, 0, e])``, so
a batch depends only on the seed and its position: resuming, or changing the number of ranks,
reproduces the same examples. Validation example ``e`` at length ``L`` comes from
``[val_seed, 1, L, e]``: a fixed set shared by every run.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from mamba_lm.data.datamodule import DataModule
from mamba_lm.data.sampling import Batch, EpochSampler, ResumableLoader, SequentialBatches
from mamba_lm.data.synthetic.config import InductionHeadsConfig, SelectiveCopyingConfig
from mamba_lm.data.synthetic.tasks import (
    induction_heads_example,
    selective_copying_example,
    supervise_every_position,
)

ENDLESS = 2**62
"""Size of the training "epoch": the stream never repeats."""


class SyntheticDataModule(DataModule):
    """Selective Copying or Induction Heads (task "lm": labels are -100 except the answers)."""

    task = "lm"

    def __init__(
        self,
        config: SelectiveCopyingConfig | InductionHeadsConfig,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.config, self.seed, self.rank, self.world_size = config, seed, rank, world_size
        self.vocab_size, self.seqlen = config.vocab_size, config.seqlen
        if isinstance(config, SelectiveCopyingConfig):
            self.example = partial(
                selective_copying_example,
                vocab_size=config.vocab_size,
                num_data_tokens=config.num_data_tokens,
            )
            self.eval_seqlens = [config.seqlen]
        else:
            self.example = partial(
                induction_heads_example,
                vocab_size=config.vocab_size,
                trigger_position=config.trigger_position,
            )
            self.eval_seqlens = sorted(config.eval_seqlens)
        self.example(np.random.default_rng(0), config.seqlen)  # fail now on impossible settings

    def _batch(
        self, entropy: tuple[int, ...], seqlen: int, indices: np.ndarray, every_position: bool = False
    ) -> Batch:
        pairs = [self.example(np.random.default_rng([*entropy, int(i)]), seqlen) for i in indices]
        input_ids, labels = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        if every_position:
            labels = supervise_every_position(input_ids, labels)
        return {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels)}

    def train_loader(self, batch_size: int) -> ResumableLoader:
        """Training batches; with induction heads' ``supervise: all`` every position is labelled."""
        sampler = EpochSampler(ENDLESS, batch_size, self.seed, self.rank, self.world_size, shuffle=False)
        every_position = getattr(self.config, "supervise", "answer") == "all"
        return ResumableLoader(
            sampler, partial(self._batch, (self.seed, 0), self.seqlen, every_position=every_position)
        )

    def val_loader(self, batch_size: int, seqlen: int | None = None) -> SequentialBatches:
        """The fixed validation set at ``seqlen`` (default: the training length; see ``eval_seqlens``)."""
        seqlen = seqlen or self.seqlen
        fetch = partial(self._batch, (self.config.val_seed, 1, seqlen), seqlen)
        return SequentialBatches(self.config.val_examples, batch_size, fetch, self.rank, self.world_size)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.config.kind, "eval_seqlens": self.eval_seqlens}
