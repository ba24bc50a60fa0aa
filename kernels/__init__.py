"""Fused kernels for selective state-space models, each with a plain PyTorch reference.

This is the project's own ``kernels`` package (distribution ``mamba-lm-framework``), not the
Hugging Face ``kernels`` hub client; ``__version__`` below is this project's version.
"""

from .cross_entropy import linear_cross_entropy, linear_cross_entropy_ref
from .layer_norm import layer_norm_fn, layer_norm_ref, rms_norm_fn
from .selective_scan import selective_scan_fn, selective_scan_ref

__version__ = "0.1.0"
__all__ = [
    "layer_norm_fn",
    "layer_norm_ref",
    "linear_cross_entropy",
    "linear_cross_entropy_ref",
    "rms_norm_fn",
    "selective_scan_fn",
    "selective_scan_ref",
]
