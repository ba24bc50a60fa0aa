"""Fixtures of the interop tests: offline hub settings, a one-process CPU Accelerator, and the trainer
tests' helpers (tiny model and loader) on the import path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "training"))  # helpers.py: tiny_trainer
sys.path.insert(0, str(TESTS / "evaluation"))  # evaluation_parts.py, local_tasks.py

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def accelerator():
    """A fresh one-process CPU Accelerator in fp32 (accelerate keeps a singleton state)."""
    from accelerate.state import AcceleratorState

    from mamba_lm.trainer import make_accelerator

    AcceleratorState._reset_state(reset_partial_state=True)
    yield make_accelerator("fp32", cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory):
    """A byte-level BPE tokenizer.json (320 tokens, EOS <|endoftext|>) trained on generated sentences."""
    from evaluation_parts import train_tokenizer

    return train_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json", vocab_size=320)
