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


REPO_ROOT = Path(__file__).resolve().parents[2]


def subprocess_env() -> dict[str, str]:
    """The environment for the commands these tests start, as a user's shell would have it: without
    the ``TRITON_INTERPRET=1`` that tests/conftest.py sets for the kernel tests (whole models under
    Triton's interpreter would take minutes per step)."""
    return {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}


def run_train(run_dir: Path, *overrides: str, timeout: float = 600) -> Path:
    """``python train.py`` (the real entry point) on the CPU with a few steps; returns the run folder."""
    import subprocess
    import sys

    quick = [
        f"hydra.run.dir={run_dir}",
        "logger=none",
        "trainer.cpu=true",
        "trainer.precision=fp32",
        "trainer.progress_bar=false",
        "trainer.eval_every=0",
        "trainer.save_every=0",
    ]
    command = [sys.executable, str(REPO_ROOT / "train.py"), *quick, *overrides]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=subprocess_env()
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return run_dir


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Mamba LM trained for a few steps on a generated local corpus (its own BPE tokenizer)."""
    import json

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
