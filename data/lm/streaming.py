"""Streaming mode: documents read and tokenized on the fly, for corpora too big for the disk.

Only the tokenizer is cached. Each epoch is one global token stream (the shuffled documents of
the train split, EOS after each) cut into blocks of ``seqlen + 1`` tokens exactly as the shard
path cuts them; each step takes one global batch of ``batch_size * world_size`` blocks and rank
``r`` keeps the ``r``-th slice. Every rank reads the whole stream, so all ranks hold the same
state: (epoch, token position, and the start of the tokenizer batch that holds that position).
Resuming skips the documents before that batch unread and re-tokenizes at most one batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from mamba_lm.data.cache import atomic_write_json, build_once, cache_root, fingerprint, read_json
from mamba_lm.data.datamodule import DataModule
from mamba_lm.data.lm.blocks import lm_batch
from mamba_lm.data.lm.config import LMDataConfig
from mamba_lm.data.lm.prepare import check_vocab_fits, is_held_out
from mamba_lm.data.lm.sources import (
    describe_source,
    iter_text_batches,
    load_documents,
    read_error,
    source_fingerprint,
)
from mamba_lm.data.lm.tokenizer import TOKENIZER_FILE, materialize_tokenizer
from mamba_lm.data.sampling import Batch, SequentialBatches

STATE_FORMAT = "lm_stream/1"
INFO_FILE = "tokenizer_info.json"


class _EpochBlocks:
    """Blocks of one epoch's token stream, starting at token ``position``; knows how to resume."""

    def __init__(
        self,
        texts: Iterator[str],
        tokenize: Callable[[list[str]], np.ndarray],
        seqlen: int,
        batch_documents: int,
        mark: tuple[int, int] = (0, 0),
        position: int = 0,
    ):
        self.texts, self.tokenize = texts, tokenize
        self.seqlen, self.batch_documents = seqlen, batch_documents
        self.documents_read, self.buffer_start = mark
        self.buffer = np.empty(0, dtype=np.int64)
        self.marks = [tuple(mark)]  # (documents before a tokenizer batch, token position where it starts)
        self.position = position

    def next_block(self) -> np.ndarray | None:
        """The block starting at ``position`` (seqlen + 1 tokens), or None at the end of the epoch."""
        needed = self.position + self.seqlen + 1
        while self.buffer_start + len(self.buffer) < needed:
            texts = list(itertools.islice(self.texts, self.batch_documents))
            if not texts:
                return None
            self.marks.append((self.documents_read, self.buffer_start + len(self.buffer)))
            self.documents_read += len(texts)
            self.buffer = np.concatenate([self.buffer, self.tokenize(texts)])
        start = self.position - self.buffer_start
        block = self.buffer[start : start + self.seqlen + 1]
        self.position += self.seqlen
        drop = self.position - self.buffer_start
        self.buffer, self.buffer_start = self.buffer[drop:], self.position
        while len(self.marks) > 1 and self.marks[1][1] <= self.position:
            self.marks.pop(0)
        return block

    def resume_mark(self) -> tuple[int, int]:
        """(documents to skip unread, token position they end at) from which ``position`` is reachable."""
        return self.marks[0]


class StreamingLoader:
    """Infinite, resumable iterator of LM batches over a streamed corpus."""

    def __init__(self, module: StreamingLMDataModule, batch_size: int):
        self.module, self.batch_size = module, batch_size
        self.epoch = 0
        self.stream = module.epoch_blocks(self.epoch)

    def __iter__(self) -> StreamingLoader:
        return self

    def __next__(self) -> Batch:
        module, global_batch = self.module, self.batch_size * self.module.world_size
        blocks: list[np.ndarray] = []
        restarted = False
        while len(blocks) < global_batch:
            block = self.stream.next_block()
            if block is None:  # end of epoch: drop the partial global batch, start the next epoch
                if restarted:
                    raise ValueError(f"one epoch of the stream holds fewer than {global_batch} blocks")
                self.epoch, blocks, restarted = self.epoch + 1, [], True
                self.stream = module.epoch_blocks(self.epoch)
                continue
            blocks.append(block)
        mine = np.stack(blocks[module.rank * self.batch_size : (module.rank + 1) * self.batch_size])
        return lm_batch(mine, module.eos_token_id, module.config.packing)

    def state_dict(self) -> dict[str, Any]:
        documents, tokens = self.stream.resume_mark()
        return {
            "format": STATE_FORMAT,
            "seed": self.module.seed,
            "epoch": self.epoch,
            "position": self.stream.position,
            "documents": documents,
            "document_tokens": tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT or state.get("seed") != self.module.seed:
            raise ValueError(
                f"not a streaming loader state of this run (format {STATE_FORMAT}, seed {self.module.seed})"
            )
        self.epoch = int(state["epoch"])
        mark = (int(state["documents"]), int(state["document_tokens"]))
        self.stream = self.module.epoch_blocks(self.epoch, mark, int(state["position"]))


class StreamingLMDataModule(DataModule):
    """Language-model data read from a ``datasets`` stream (``data.dataset.streaming: true``)."""

    task = "lm"

    def __init__(self, config: LMDataConfig, seed: int, rank: int = 0, world_size: int = 1):
        self.config, self.seed, self.rank, self.world_size = config, seed, rank, world_size
        self.root = cache_root(config.cache_dir)
        self.seqlen = config.seqlen
        folder = self._tokenizer_folder()
        info = read_json(folder / INFO_FILE)
        check_vocab_fits(info["vocab_size"], config.max_vocab_size, f"tokenizer {config.tokenizer.source!r}")
        self.vocab_size = info["vocab_size"]
        self.eos_token_id, self.pad_token_id = info["eos_token_id"], info["pad_token_id"]
        self.tokenizer_file = str(folder / TOKENIZER_FILE)
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(self.tokenizer_file)
        self._val_blocks: np.ndarray | None = None

    def _tokenizer_folder(self) -> Path:
        config = self.config
        key = {"tokenizer": vars(config.tokenizer), "source": source_fingerprint(config.dataset, self.root)}
        folder = self.root / "lm-stream" / f"{config.name}-{fingerprint(key)}"

        def build(temporary: Path) -> None:
            info = materialize_tokenizer(config.tokenizer, self._texts("train", epoch=None), temporary)
            atomic_write_json(temporary / INFO_FILE, vars(info))

        build_once(folder, lambda f: (f / INFO_FILE).is_file() and (f / TOKENIZER_FILE).is_file(), build)
        return folder

    def _texts(self, split: str, epoch: int | None) -> Iterator[str]:
        """Texts of ``split`` ("train" or "val") in order, shuffled by (seed, epoch) if epoch is set."""
        data, validation = self.config.dataset, self.config.validation
        named = split == "val" and validation.split is not None
        dataset = load_documents(data, validation.split if named else data.split, self.root, streaming=True)
        if epoch is not None:
            dataset = dataset.shuffle(seed=self.seed, buffer_size=self.config.shuffle_buffer)
            dataset.set_epoch(epoch)
        limits = (None, None) if split == "val" else (data.max_documents, data.max_bytes)
        fraction = 0.0 if validation.split is not None else validation.fraction
        batches = iter_text_batches(dataset, data.text_column, self.config.encode_batch_documents, *limits)
        while True:
            try:
                batch = next(batches, None)
            except Exception as error:  # a local file that is not UTF-8 text fails here, mid-stream
                if data.source != "files":
                    raise
                raise read_error(data, error) from error
            if batch is None:
                return
            for text in batch:
                if named or is_held_out(text, fraction) == (split == "val"):
                    yield text

    def _tokenize(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return np.concatenate([np.array(e.ids + [self.eos_token_id], dtype=np.int64) for e in encodings])

    def epoch_blocks(self, epoch: int, mark: tuple[int, int] = (0, 0), position: int = 0) -> _EpochBlocks:
        """The blocks of training epoch ``epoch`` from token ``position`` (``mark`` from a saved state)."""
        texts = itertools.islice(self._texts("train", epoch), mark[0], None)
        return _EpochBlocks(
            texts, self._tokenize, self.seqlen, self.config.encode_batch_documents, mark, position
        )

    def train_loader(self, batch_size: int) -> StreamingLoader:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return StreamingLoader(self, batch_size)

    def val_loader(self, batch_size: int) -> SequentialBatches:
        if self._val_blocks is None:
            stream = _EpochBlocks(
                self._texts("val", None), self._tokenize, self.seqlen, self.config.encode_batch_documents
            )
            blocks = []
            while (
                len(blocks) < self.config.validation.max_blocks and (block := stream.next_block()) is not None
            ):
                blocks.append(block)
            if not blocks:
                raise ValueError(
                    f"the validation stream of {describe_source(self.config.dataset)} has no full block"
                )
            self._val_blocks = np.stack(blocks)
        blocks = self._val_blocks
        return SequentialBatches(
            len(blocks),
            batch_size,
            lambda indices: lm_batch(blocks[indices], self.eos_token_id, self.config.packing),
            self.rank,
            self.world_size,
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "name": self.config.name,
            "source": describe_source(self.config.dataset),
            "streaming": True,
        }
