"""Session-wide test set-up.

On a machine without CUDA, Triton kernels can only run in Triton's interpreter, and Triton fixes
compiled-or-interpreted when it is first imported: set ``TRITON_INTERPRET=1`` before anything
imports it. The kernel tests (tests/kernels) then run the Triton kernels that way. Every other test
keeps the PyTorch path that ``selective_scan_fn`` takes on a CPU without that variable, as a user's
run would: the interpreter is exact but far too slow for whole models.
"""

import os

import pytest
import torch

ON_CPU = not torch.cuda.is_available()
if ON_CPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _cpu_models_use_the_pytorch_scan(request, monkeypatch):
    if ON_CPU and "tests/kernels" not in str(request.node.path).replace(os.sep, "/"):
        import kernels.selective_scan.interface as interface

        monkeypatch.setattr(interface, "triton_enabled", lambda device: device.type == "cuda")
