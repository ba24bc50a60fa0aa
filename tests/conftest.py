"""Session-wide test set-up.

On a machine without CUDA, Triton kernels can only run in Triton's interpreter, and Triton fixes
compiled-or-interpreted for each kernel when its module is imported. So the scan's kernel modules
are imported here with ``TRITON_INTERPRET=1``, and the variable is removed again afterwards:
the kernel tests (tests/kernels) call those interpreted kernels, while every other test, and every
subprocess a test starts, sees the environment a user's CPU run would see, in which
``selective_scan_fn`` takes its PyTorch path (the interpreter is exact but far too slow for models).
"""

import os

import torch

if not torch.cuda.is_available() and "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton.experimental.gluon  # noqa: F401  (imported lazily by launches; it checks the mode)

        import kernels.selective_scan.triton_scan  # noqa: F401  (its kernels become interpreted functions)
    finally:
        del os.environ["TRITON_INTERPRET"]
