"""Fused kernels for selective state-space models, each with a plain PyTorch reference.

This is the project's own ``kernels`` package (distribution ``mamba-lm-framework``), not the
Hugging Face ``kernels`` hub client; ``__version__`` below is this project's version.
"""

from .selective_scan import selective_scan_fn, selective_scan_ref

__version__ = "0.1.0"
__all__ = ["selective_scan_fn", "selective_scan_ref"]
