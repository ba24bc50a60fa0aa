"""Streaming on 2 ranks: each tokenizes only its share of the documents, prefetched, resumable per rank."""

from __future__ import annotations

import json
import time

import pytest
from conftest import lm_config
from mamba_lm.data import build_datamodule


def streaming_module(cache, corpus, rank=0, world_size=1):
    dataset = {"source": "files", "files": [str(corpus)], "streaming": True}
    config = lm_config(cache, dataset, encode_batch_documents=7, shuffle_buffer=16)
    return build_datamodule(config, seed=0, rank=rank, world_size=world_size)


def record_tokenized(module) -> list[str]:
    """Make ``module`` remember every text it tokenizes; returns that (growing) list."""
    seen: list[str] = []
    tokenize = module._tokenize

    def recording(texts):
        seen.extend(texts)
        return tokenize(texts)

    module._tokenize = recording
    return seen


def drain_epoch(module) -> int:
    """Read epoch 0 of ``module``'s share to its end; returns the number of blocks."""
    stream, count = module.epoch_blocks(0), 0
    while stream.next_block() is not None:
        count += 1
    return count


def take(loader, steps):
    return [next(loader)["input_ids"] for _ in range(steps)]


def test_each_rank_tokenizes_only_its_share_of_the_documents(tmp_path, jsonl_corpus):
    single = streaming_module(tmp_path, jsonl_corpus)
    everything = record_tokenized(single)
    drain_epoch(single)
    ranks = [streaming_module(tmp_path, jsonl_corpus, rank, 2) for rank in range(2)]
    shares = [record_tokenized(module) for module in ranks]
    blocks = [drain_epoch(module) for module in ranks]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == sorted(everything)  # each document once, on one rank
    assert shares[0] == everything[0::2] and shares[1] == everything[1::2]  # the same shuffled order
    assert all(count > 0 for count in blocks)


def test_rank_batches_differ_and_resume_on_their_rank(tmp_path, jsonl_corpus):
    loaders = [streaming_module(tmp_path, jsonl_corpus, rank, 2).train_loader(4) for rank in range(2)]
    straight = [take(loader, 8) for loader in loaders]
    assert not any((a == b).all() for a, b in zip(*straight))

    first = streaming_module(tmp_path, jsonl_corpus, 1, 2).train_loader(4)
    head = take(first, 3)
    state = json.loads(json.dumps(first.state_dict()))
    first.close()
    assert state["rank"] == 1 and state["world_size"] == 2
    resumed = streaming_module(tmp_path, jsonl_corpus, 1, 2).train_loader(4)
    resumed.load_state_dict(state)
    assert all((a == b).all() for a, b in zip(head + take(resumed, 5), straight[1]))

    for rank, world_size in ((0, 2), (0, 1)):
        other = streaming_module(tmp_path, jsonl_corpus, rank, world_size).train_loader(4)
        with pytest.raises(ValueError, match="streaming position of rank 1 of 2 processes"):
            other.load_state_dict(state)


def test_batches_are_prepared_ahead_and_the_state_counts_only_returned_ones(tmp_path, jsonl_corpus):
    lazy_module, eager_module = (streaming_module(tmp_path, jsonl_corpus) for _ in range(2))
    lazy_texts, eager_texts = record_tokenized(lazy_module), record_tokenized(eager_module)
    lazy, eager = lazy_module.train_loader(16, prefetch=0), eager_module.train_loader(16, prefetch=4)
    assert (next(lazy)["input_ids"] == next(eager)["input_ids"]).all()
    deadline = time.time() + 10
    while len(eager_texts) <= len(lazy_texts) and time.time() < deadline:
        time.sleep(0.01)
    assert len(eager_texts) > len(lazy_texts)  # the thread tokenized documents for later batches
    assert eager.state_dict() == lazy.state_dict()  # the position after the one batch returned
    assert all((a == b).all() for a, b in zip(take(eager, 12), take(lazy, 12)))
    eager.close()


def test_an_error_in_the_prefetching_thread_reaches_the_trainer(tmp_path, jsonl_corpus):
    module = streaming_module(tmp_path, jsonl_corpus)

    def broken(texts):
        raise RuntimeError("tokenizer failed")

    module._tokenize = broken
    with pytest.raises(RuntimeError, match="tokenizer failed"):
        next(module.train_loader(2, prefetch=2))
