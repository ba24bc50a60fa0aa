"""The Triton kernel modules, imported once so that their kernels run in Triton's interpreter.

Triton fixes compiled-or-interpreted for each kernel when its module is imported. On a machine without
CUDA, tests/conftest.py calls ``import_interpreted()`` before any test module is collected; the kernel
tests then import these modules as usual and get the interpreted kernels. The variable is removed
again afterwards, so every other test (and every subprocess a test starts) sees a user's CPU
environment, where each op takes its PyTorch path (the interpreter is exact but far too slow for models);
a test that wants the Triton path on a CPU sets ``TRITON_INTERPRET=1`` itself (monkeypatch.setenv).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import torch

KERNELS = Path(__file__).resolve().parents[1] / "kernels"
# Every kernels/<op>/triton_*.py, as module names: mamba_lm.kernels.selective_scan.triton_scan, ...
TRITON_MODULES = tuple(
    f"mamba_lm.kernels.{path.parent.name}.{path.stem}" for path in sorted(KERNELS.glob("*/triton_*.py"))
)


needs_interpreter = pytest.mark.skipif(
    torch.cuda.is_available(),
    reason="Triton kernels on CPU tensors through the interpreter, which tests/conftest.py turns on only "
    "without CUDA; on a GPU the kernels are tested by the *_gpu.py files",
)
"""For the kernel tests that run a Triton kernel on CPU tensors (the rest of their module runs anywhere)."""


def import_interpreted() -> None:
    """Import every Triton kernel module with ``TRITON_INTERPRET=1``, unless the variable is already set
    (then the caller's choice holds for everything)."""
    if "TRITON_INTERPRET" in os.environ:
        return
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton.experimental.gluon  # noqa: F401  (imported lazily by launches; it checks the mode)

        for name in TRITON_MODULES:
            importlib.import_module(name)
    finally:
        del os.environ["TRITON_INTERPRET"]
