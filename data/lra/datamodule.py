"""Long Range Arena classification data module."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mamba_lm.data.datamodule import DataModule
from mamba_lm.data.lra.build import prepare_lra
from mamba_lm.data.lra.store import ExampleStore
from mamba_lm.data.lra.tasks import LRA_TASKS
from mamba_lm.data.sampling import Batch, EpochSampler, RandomPermutation, ResumableLoader, SequentialBatches


def classification_batch(
    examples: list[list[np.ndarray]], labels: np.ndarray, pad_token_id: int | None, width: int | None = None
) -> Batch:
    """Pad examples (each a list of documents' ids) into a batch.

    Returns ``input_ids`` int64 (B, L) -- or (B, D, L) for D > 1 documents -- padded with
    ``pad_token_id`` to ``width`` (default: the longest document), ``labels`` int64 (B,) and
    ``lengths`` int64 (B,) or (B, D): the unpadded lengths.
    """
    # an empty document counts as one pad token: pooling over nothing is undefined
    lengths = np.array([[max(len(doc), 1) for doc in docs] for docs in examples], dtype=np.int64)
    width = width or int(lengths.max())
    if pad_token_id is None and np.any(lengths != width):
        raise ValueError(
            f"inputs of unequal lengths {sorted(set(lengths.ravel().tolist()))} but the task has no pad id"
        )
    ids = np.full((len(examples), lengths.shape[1], width), pad_token_id or 0, dtype=np.int64)
    for row, docs in enumerate(examples):
        for column, doc in enumerate(docs):
            ids[row, column, : len(doc)] = doc[:width]
    if lengths.shape[1] == 1:
        ids, lengths = ids[:, 0], lengths[:, 0]
    return {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        "lengths": torch.from_numpy(np.minimum(lengths, width)),
    }


class _Split:
    """A store split, optionally reduced to a fixed pseudo-random subset of ``limit`` examples."""

    def __init__(self, store: ExampleStore, limit: int | None):
        self.store = store
        count = len(store) if limit is None else min(limit, len(store))
        chosen = (
            RandomPermutation(len(store), 0)(np.arange(count)) if count < len(store) else np.arange(count)
        )
        self.indices = np.sort(chosen)

    def __len__(self) -> int:
        return len(self.indices)


class LRADataModule(DataModule):
    """One LRA task: padded classification batches; a seeded order per epoch, disjoint across ranks."""

    task = "classification"

    def __init__(self, config, seed: int, rank: int = 0, world_size: int = 1):
        self.config, self.seed, self.rank, self.world_size = config, seed, rank, world_size
        spec = LRA_TASKS[config.kind]
        if config.kind in ("lra_pathfinder", "lra_pathx"):
            self.seqlen = config.seqlen or config.resolution**2
        else:
            self.seqlen = config.seqlen or spec.seqlen
        self.vocab_size, self.num_classes = spec.vocab_size, spec.num_classes
        self.pad_token_id, self.num_documents = spec.pad_token_id, spec.num_documents
        self.folder, self.meta = prepare_lra(config, self.seqlen)
        self.splits: dict[str, _Split] = {}
        for split in ("train", "val", "test"):
            stored = self.meta["aliases"].get(split, split)
            if stored in self.meta["splits"]:
                limit = config.max_train_examples if split == "train" else config.max_eval_examples
                self.splits[split] = _Split(ExampleStore(self.folder, stored), limit)

    def _fetch(self, split: _Split):
        def fetch(positions: np.ndarray) -> Batch:
            indices = split.indices[positions]
            examples = [split.store.documents(int(i)) for i in indices]
            width = self._batch_width(examples)
            return classification_batch(examples, split.store.labels[indices], self.pad_token_id, width)

        return fetch

    def _batch_width(self, examples: list[list[np.ndarray]]) -> int | None:
        """Positions per padded batch: seqlen (pad_to_seqlen), the longest document rounded up to
        pad_multiple (at most seqlen), or None (the longest, as classification_batch pads by default)."""
        if self.config.pad_to_seqlen:
            return self.seqlen
        multiple = self.config.pad_multiple
        if multiple == 1:
            return None
        longest = max((max(len(doc), 1) for docs in examples for doc in docs), default=1)
        return min(self.seqlen, -(-longest // multiple) * multiple)

    def _require(self, name: str) -> _Split:
        if name not in self.splits or len(self.splits[name]) == 0:
            raise ValueError(f"{self.config.kind} has no {name} split")
        return self.splits[name]

    def train_loader(self, batch_size: int) -> ResumableLoader:
        split = self._require("train")
        sampler = EpochSampler(len(split), batch_size, self.seed, self.rank, self.world_size, what="examples")
        return ResumableLoader(sampler, self._fetch(split))

    def val_loader(self, batch_size: int) -> SequentialBatches:
        split = self._require("val")
        return SequentialBatches(len(split), batch_size, self._fetch(split), self.rank, self.world_size)

    @property
    def has_test(self) -> bool:
        return "test" in self.splits

    def test_loader(self, batch_size: int) -> SequentialBatches:
        split = self._require("test")
        return SequentialBatches(len(split), batch_size, self._fetch(split), self.rank, self.world_size)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "name": self.config.kind,
            "source": self.config.source,
            "num_documents": self.num_documents,
            **{f"{name}_examples": len(split) for name, split in self.splits.items()},
            "store": str(self.folder),
        }
