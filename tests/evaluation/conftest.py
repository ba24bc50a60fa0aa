"""Small real parts for evaluation tests: a byte-level BPE tokenizer trained on generated text, and
tiny Mamba / S4D / Transformer++ language models (random weights, fixed seeds)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from evaluation.text_tokenizer import TextTokenizer
from mamba_lm import MambaConfig, MambaLMHeadModel, TransformerConfig, TransformerLMHeadModel

# Tests never touch the network: datasets and the hub client read these at import time.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EOS = "<|endoftext|>"
WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "under",
    "mat",
    "tree",
    "red",
    "blue",
    "big",
    "small",
    "quickly",
    "slowly",
    "and",
    "then",
]


def generated_sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(count)]


def train_tokenizer(path: Path, vocab_size: int = 320) -> Path:
    """A byte-level BPE with an EOS token, trained on generated sentences, saved as tokenizer.json."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(generated_sentences(300), trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")


@pytest.fixture(scope="session")
def text_tokenizer(tokenizer_file: Path) -> TextTokenizer:
    return TextTokenizer.from_file(tokenizer_file)


def tiny_lm(kind: str, vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A 2-layer random LM: "mamba", "s4d" or "transformer"."""
    torch.manual_seed(seed)
    if kind == "transformer":
        return TransformerLMHeadModel(
            TransformerConfig(d_model=32, n_layer=2, n_head=2, vocab_size=vocab_size)
        ).eval()
    ssm_cfg = {"layer": "S4D"} if kind == "s4d" else {}
    return MambaLMHeadModel(MambaConfig(d_model=32, n_layer=2, vocab_size=vocab_size, ssm_cfg=ssm_cfg)).eval()
