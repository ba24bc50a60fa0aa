"""Streaming mode: same blocks as the stream, exact resume across epochs (ranks: test_streaming_ranks.py)."""

from __future__ import annotations

import json

import pytest
from conftest import lm_config
from mamba_lm.data import build_datamodule


def streaming_config(cache, corpus, **overrides):
    dataset = {"source": "files", "files": [str(corpus)], "streaming": True}
    return lm_config(cache, dataset, encode_batch_documents=7, shuffle_buffer=16, **overrides)


def take(loader, steps):
    return [next(loader)["input_ids"] for _ in range(steps)]


def test_streaming_resume_is_exact_across_epochs(tmp_path, jsonl_corpus):
    module = build_datamodule(streaming_config(tmp_path, jsonl_corpus), seed=0)
    probe = module.train_loader(16)
    steps = 0
    while probe.epoch == 0:
        next(probe)
        steps += 1
    total = steps + 6
    straight = take(module.train_loader(16), total)
    for cut in (steps - 1, steps + 2):
        first = module.train_loader(16)
        head = take(first, cut)
        state = json.loads(json.dumps(first.state_dict()))
        resumed = build_datamodule(streaming_config(tmp_path, jsonl_corpus), seed=0).train_loader(16)
        resumed.load_state_dict(state)
        tail = take(resumed, total - cut)
        assert all((a == b).all() for a, b in zip(head + tail, straight)), cut
    assert not (straight[0] == straight[steps]).all()  # epochs are shuffled differently


def test_streaming_validation_and_packing(tmp_path, jsonl_corpus):
    module = build_datamodule(streaming_config(tmp_path, jsonl_corpus, packing=True), seed=0)
    batches = list(module.val_loader(3))
    assert sum(len(b["input_ids"]) for b in batches) == 8
    assert all((b["input_ids"][:, 1:] == b["labels"][:, :-1]).all() for b in batches)
    assert "seq_idx" in next(module.train_loader(2))
    assert module.tokenizer_file.endswith("tokenizer.json") and module.vocab_size == 300


def test_streaming_needs_a_validation_cap(tmp_path, jsonl_corpus):
    with pytest.raises(ValueError, match="max_blocks must be set in streaming mode"):
        build_datamodule(streaming_config(tmp_path, jsonl_corpus, validation={"max_blocks": None}), seed=0)
