"""Shared helpers for the data tests: small generated corpora and configs, all offline."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
]


def make_documents(count: int = 120, seed: int = 0) -> list[str]:
    """Deterministic pseudo-English documents of varied length (some with non-ASCII text)."""
    rng = random.Random(seed)
    documents = []
    for index in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 120))]
        if index % 7 == 0:
            words.append("naïve café – ünïcode")
        documents.append(f"Document {index}: " + " ".join(words) + ".")
    return documents


def write_jsonl(path: Path, texts: list[str], column: str = "text") -> Path:
    path.write_text("".join(json.dumps({column: text}) + "\n" for text in texts))
    return path


def lm_config(cache: Path, dataset: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A small LM data config: trained 300-token BPE, 16-token blocks, 20% held out."""
    config = {
        "kind": "lm",
        "name": "test",
        "seqlen": 16,
        "cache_dir": str(cache),
        "dataset": dataset,
        "tokenizer": {"source": "train", "vocab_size": 300},
        "validation": {"fraction": 0.2, "max_blocks": 8},
        "encode_batch_documents": 16,
        "shard_tokens": 1000,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def documents() -> list[str]:
    return make_documents()


@pytest.fixture
def jsonl_corpus(tmp_path: Path, documents: list[str]) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", documents)
