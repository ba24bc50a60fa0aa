"""Shared fixtures of the trainer's tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py


@pytest.fixture
def accelerator():
    """A fresh single-process fp32 CPU Accelerator (accelerate's state is a process-wide singleton)."""
    from accelerate.state import AcceleratorState

    from mamba_lm.trainer import make_accelerator

    AcceleratorState._reset_state(reset_partial_state=True)
    yield make_accelerator("fp32", cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)
