"""Streaming mode: documents read and tokenized on the fly, for corpora too big for the disk.

Only the tokenizer is cached. Each epoch shuffles the documents of the train split by (seed, epoch);
rank ``r`` of ``world_size`` keeps every ``world_size``-th of them (from the ``r``-th on), tokenizes
only those, and cuts its own token stream (EOS after each document) into blocks of ``seqlen + 1``
tokens exactly as the shard path cuts them. Every rank still reads (downloads and parses) the whole
stream; the tokenizer, the costly part, sees only its share. A background thread prepares the next
batches (``PREFETCH_BATCHES``) while the model trains on the current one.

A rank's state is (epoch, token position in its stream, and the start of the tokenizer batch that
holds that position), so ranks differ in state and a streaming run resumes on the same number of
processes only. Resuming skips the rank's documents before that batch untokenized and re-tokenizes at
most one batch. Ranks reach the ends of their epochs at different steps (their shares hold different
numbers of tokens); each goes on to its next epoch alone. The validation blocks (at most
``validation.max_blocks``) are tokenized whole on every rank and split by ``SequentialBatches``.
"""

from __future__ import annotations

import itertools
import queue
import threading
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

STATE_FORMAT = "lm_stream/2"
PREFETCH_BATCHES = 4
"""Batches a training loader prepares ahead of the one the trainer asks for (0: none, no thread)."""
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


class _Prefetcher:
    """Runs ``items`` in a daemon thread, keeping up to ``depth`` items ready; re-raises its errors."""

    def __init__(self, items: Iterator[Any], depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True, name="stream-prefetch")
        self._thread.start()

    def _run(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put((True, item)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put((False, error))

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> Any:
        ok, item = self._queue.get()
        if not ok:
            self.close()
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class StreamingLoader:
    """Infinite, resumable iterator of this rank's LM batches over a streamed corpus, prefetched."""

    def __init__(self, module: StreamingLMDataModule, batch_size: int, prefetch: int = PREFETCH_BATCHES):
        self.module, self.batch_size, self.prefetch = module, batch_size, prefetch
        self.epoch, self._mark, self._position = 0, (0, 0), 0  # after the batches returned so far
        self._pending: Iterator[tuple[Batch, tuple]] | _Prefetcher | None = None

    def _batches(self, epoch: int, mark: tuple[int, int], position: int) -> Iterator[tuple[Batch, tuple]]:
        """(batch, (epoch, mark, position) after it) from the given position on, epoch after epoch."""
        module = self.module
        stream = module.epoch_blocks(epoch, mark, position)
        while True:
            blocks: list[np.ndarray] = []
            restarted = False
            while len(blocks) < self.batch_size:
                block = stream.next_block()
                if block is None:  # end of epoch: drop the partial batch, start the next epoch
                    if restarted:
                        raise ValueError(
                            f"one epoch of rank {module.rank}'s share of the stream holds fewer than "
                            f"{self.batch_size} blocks of seqlen + 1 = {module.seqlen + 1} tokens"
                        )
                    epoch, blocks, restarted = epoch + 1, [], True
                    stream = module.epoch_blocks(epoch)
                    continue
                blocks.append(block)
            batch = lm_batch(np.stack(blocks), module.eos_token_id, module.config.packing)
            yield batch, (epoch, stream.resume_mark(), stream.position)

    def __iter__(self) -> StreamingLoader:
        return self

    def __next__(self) -> Batch:
        if self._pending is None:
            batches = self._batches(self.epoch, self._mark, self._position)
            self._pending = _Prefetcher(batches, self.prefetch) if self.prefetch > 0 else batches
        batch, (self.epoch, self._mark, self._position) = next(self._pending)
        return batch

    def close(self) -> None:
        """Stop the prefetching thread (a new one starts at the next batch)."""
        if isinstance(self._pending, _Prefetcher):
            self._pending.close()
        self._pending = None

    def state_dict(self) -> dict[str, Any]:
        """Position after the batches returned so far (not those prefetched); JSON-serializable."""
        documents, tokens = self._mark
        module = self.module
        return {
            "format": STATE_FORMAT,
            "seed": module.seed,
            "rank": module.rank,
            "world_size": module.world_size,
            "epoch": self.epoch,
            "position": self._position,
            "documents": documents,
            "document_tokens": tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        module = self.module
        if state.get("format") != STATE_FORMAT or state.get("seed") != module.seed:
            raise ValueError(
                f"not a streaming loader state of this run (format {STATE_FORMAT}, seed {module.seed})"
            )
        if (state["rank"], state["world_size"]) != (module.rank, module.world_size):
            raise ValueError(
                f"streaming position of rank {state['rank']} of {state['world_size']} processes, this "
                f"loader is rank {module.rank} of {module.world_size}: resume streaming data on "
                f"{state['world_size']} processes"
            )
        self.close()
        self.epoch, self._position = int(state["epoch"]), int(state["position"])
        self._mark = (int(state["documents"]), int(state["document_tokens"]))


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
        """This rank's blocks of training epoch ``epoch`` from token ``position`` of its stream (``mark``
        from a saved state): its share of the shuffled documents, every ``world_size``-th."""
        share = itertools.islice(self._texts("train", epoch), self.rank, None, self.world_size)
        texts = itertools.islice(share, mark[0], None)
        return _EpochBlocks(
            texts, self._tokenize, self.seqlen, self.config.encode_batch_documents, mark, position
        )

    def train_loader(self, batch_size: int, prefetch: int = PREFETCH_BATCHES) -> StreamingLoader:
        """This rank's training batches of ``batch_size`` blocks, ``prefetch`` of them prepared ahead."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return StreamingLoader(self, batch_size, prefetch)

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
