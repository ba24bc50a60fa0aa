"""Causal depthwise convolution (Mamba's short conv): Triton kernels, the PyTorch path, and the reference."""

from .interface import causal_conv1d_fn
from .ref import causal_conv1d_ref

__all__ = ["causal_conv1d_fn", "causal_conv1d_ref"]
