"""Fused kernels for selective state-space models, each with a plain PyTorch reference.

This is the project's own ``kernels`` package (distribution ``mamba-lm-framework``), not the
Hugging Face ``kernels`` hub client; ``__version__`` below is this project's version.
"""

from mamba_lm._short_names import alias_short_name

# Imported as `kernels` from a checkout's root: `kernels` becomes mamba_lm.kernels (mamba_lm/_short_names.py).
alias_short_name(__name__)

from .cross_entropy import linear_cross_entropy, linear_cross_entropy_ref
from .depthwise_conv import causal_conv1d_fn, causal_conv1d_ref
from .layer_norm import layer_norm_fn, layer_norm_ref, rms_norm_fn
from .selective_scan import selective_scan_fn, selective_scan_ref
from .selective_state_update import conv_state_update, selective_state_update, selective_state_update_ref
from .ssm_kernel import vandermonde_kernel, vandermonde_kernel_ref

__version__ = "0.1.0"
__all__ = [
    "causal_conv1d_fn",
    "causal_conv1d_ref",
    "layer_norm_fn",
    "layer_norm_ref",
    "linear_cross_entropy",
    "linear_cross_entropy_ref",
    "rms_norm_fn",
    "selective_scan_fn",
    "selective_scan_ref",
    "conv_state_update",
    "selective_state_update",
    "selective_state_update_ref",
    "vandermonde_kernel",
    "vandermonde_kernel_ref",
]
