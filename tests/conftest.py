"""Session-wide test set-up: on a machine without CUDA, every Triton kernel module is imported here
under ``TRITON_INTERPRET=1`` (tests/interpreted_kernels.py says why), before any test module."""

import torch
from interpreted_kernels import import_interpreted

if not torch.cuda.is_available():
    import_interpreted()
