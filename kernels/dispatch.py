"""Where the Triton kernels run: the one check every op's entry point makes before taking its Triton
path rather than its PyTorch path."""

from __future__ import annotations

import functools
import importlib.util
import os

import torch


@functools.cache
def triton_installed() -> bool:
    """Whether triton can be imported (it has wheels for Linux x86_64/aarch64 only)."""
    return importlib.util.find_spec("triton") is not None


def triton_enabled(device: torch.device) -> bool:
    """The Triton kernels run on CUDA devices, and on the CPU under ``TRITON_INTERPRET=1``; never
    where triton is not installed or ``MAMBA_LM_TRITON=0`` is set (every op then takes its PyTorch
    path: a way to rule a kernel out when hunting a numerical difference)."""
    if not triton_installed() or os.environ.get("MAMBA_LM_TRITON", "1") == "0":
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_runs_on(x: torch.Tensor) -> bool:
    """Whether an op's Triton path takes ``x``: Triton runs on its device and x is not float64 (the
    kernels compute in fp32; float64 inputs, as in gradcheck, take the PyTorch path)."""
    return triton_enabled(x.device) and x.dtype != torch.float64
