"""Selective scan (Mamba S6): Triton kernels, the PyTorch CPU path, and the sequential reference."""

from .interface import selective_scan_fn
from .ref import selective_scan_ref

__all__ = ["selective_scan_fn", "selective_scan_ref"]
