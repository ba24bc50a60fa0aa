"""Shared fixtures of the trainer's tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py


@pytest.fixture
def accelerator(request):
    """A fresh one-process CPU Accelerator, fp32 unless parametrized (accelerate keeps a singleton state)."""
    from accelerate.state import AcceleratorState

    from mamba_lm.trainer import make_accelerator

    AcceleratorState._reset_state(reset_partial_state=True)
    yield make_accelerator(getattr(request, "param", "fp32"), cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)
