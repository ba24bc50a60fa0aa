"""Session fixtures of the evaluation tests; the parts they are made of live in evaluation_parts.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from evaluation_parts import generated_sentences, run_train, train_tokenizer
from mamba_lm.evaluation.text_tokenizer import TextTokenizer

# Tests never touch the network: datasets and the hub client read these at import time.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")


@pytest.fixture(scope="session")
def text_tokenizer(tokenizer_file: Path) -> TextTokenizer:
    return TextTokenizer.from_file(tokenizer_file)


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Mamba LM trained for a few steps on a generated local corpus (its own BPE tokenizer)."""
    root = tmp_path_factory.mktemp("lm_run")
    corpus = root / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"text": " ".join(generated_sentences(5, seed=i))}) + "\n" for i in range(200))
    )
    return run_train(
        root / "run",
        "data=local_files",
        f"data.dataset.files=[{corpus}]",
        "data.tokenizer.vocab_size=300",
        "data.seqlen=32",
        "data.validation.fraction=0.1",
        "data.validation.max_blocks=8",
        f"data.cache_dir={root / 'cache'}",
        "model=mamba_tiny",
        "trainer.max_steps=4",
        "trainer.micro_batch_size=4",
        "trainer.eval_batches=4",
        "trainer.log_every=2",
    )


@pytest.fixture(scope="session")
def induction_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """experiment=synthetic/induction_heads (2 x 64 Mamba) for two short steps (length 64, batch 4)."""
    root = tmp_path_factory.mktemp("induction_run")
    return run_train(
        root / "run",
        "experiment=synthetic/induction_heads",
        "trainer.max_steps=2",
        "trainer.log_every=1",
        "trainer.micro_batch_size=4",
        "data.seqlen=64",
        "data.val_examples=8",
        "trainer.eval_batches=1",
    )
