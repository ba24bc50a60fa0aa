"""Mamba's one-token decoding step (conv window + selective state update): Triton kernels, the
PyTorch reference beside them, and the dispatching entry points."""

from .interface import conv_state_update, selective_state_update
from .ref import conv_state_update_ref, selective_state_update_ref

__all__ = [
    "conv_state_update",
    "conv_state_update_ref",
    "selective_state_update",
    "selective_state_update_ref",
]
