"""Language-model data module over prepared token shards."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from mamba_lm.data.datamodule import DataModule
from mamba_lm.data.lm.blocks import BlockDataset, lm_batch
from mamba_lm.data.lm.config import LMDataConfig
from mamba_lm.data.lm.prepare import prepare_corpus
from mamba_lm.data.lm.shards import TokenStream
from mamba_lm.data.sampling import Batch, EpochSampler, ResumableLoader, SequentialBatches

log = logging.getLogger(__name__)


class LMDataModule(DataModule):
    """Blocks of ``seqlen + 1`` tokens from the shards of ``config``'s corpus.

    Training order: a seeded permutation of all blocks per epoch, ranks reading disjoint
    slices. Validation: the first ``validation.max_blocks`` blocks of the held-out split.
    """

    task = "lm"

    def __init__(self, config: LMDataConfig, seed: int, rank: int = 0, world_size: int = 1):
        self.config, self.seed, self.rank, self.world_size = config, seed, rank, world_size
        self.folder, self.manifest = prepare_corpus(config)
        tokenizer = self.manifest["tokenizer"]
        if tokenizer["source"] == "trained" and config.tokenizer.source != "train":
            log.warning(
                "the shards in %s use a tokenizer trained on the corpus because %r was unreachable; "
                "delete that folder to rebuild them with %r",
                self.folder,
                config.tokenizer.source,
                config.tokenizer.source,
            )
        self.vocab_size = tokenizer["vocab_size"]
        self.eos_token_id = tokenizer["eos_token_id"]
        self.pad_token_id = tokenizer["pad_token_id"]
        self.tokenizer_file = str(self.folder / tokenizer["file"])
        self.seqlen = config.seqlen
        splits = self.manifest["splits"]
        dtype = self.manifest["dtype"]
        self.train_blocks = BlockDataset(TokenStream(self.folder, splits["train"], dtype), config.seqlen)
        self.val_blocks = BlockDataset(
            TokenStream(self.folder, splits["val"], dtype), config.seqlen, config.validation.max_blocks
        )
        if self.val_blocks.num_blocks == 0:
            raise ValueError(
                f"the validation split has {splits['val']['tokens']} tokens, fewer than one block of "
                f"seqlen + 1 = {config.seqlen + 1}; lower data.seqlen or hold out more documents"
            )

    def _fetch(self, blocks: BlockDataset):
        def fetch(indices: np.ndarray) -> Batch:
            return lm_batch(blocks.blocks(indices), self.eos_token_id, self.config.packing)

        return fetch

    def train_loader(self, batch_size: int) -> ResumableLoader:
        sampler = EpochSampler(
            self.train_blocks.num_blocks,
            batch_size,
            self.seed,
            self.rank,
            self.world_size,
            what=f"blocks of seqlen + 1 = {self.seqlen + 1} tokens",
        )
        return ResumableLoader(sampler, self._fetch(self.train_blocks))

    def val_loader(self, batch_size: int) -> SequentialBatches:
        return SequentialBatches(
            self.val_blocks.num_blocks, batch_size, self._fetch(self.val_blocks), self.rank, self.world_size
        )

    def describe(self) -> dict[str, Any]:
        splits = self.manifest["splits"]
        return {
            **super().describe(),
            "name": self.config.name,
            "source": self.manifest["source"],
            "tokenizer": self.manifest["tokenizer"]["source"],
            "train_tokens": splits["train"]["tokens"],
            "val_tokens": splits["val"]["tokens"],
            "train_documents": splits["train"]["documents"],
            "val_documents": splits["val"]["documents"],
            "train_blocks": self.train_blocks.num_blocks,
            "val_blocks": self.val_blocks.num_blocks,
            "shards": str(self.folder),
            "content_hash": self.manifest["content_hash"],
        }
