"""Switching a model between its fused kernels and the unfused PyTorch reference path.

Modules with a fused fast path (the norms, the Mamba mixer, the LM's loss) carry a ``fused`` attribute,
True by default. ``set_fused(model, False)`` runs the plain composition of PyTorch ops and unfused
kernel calls instead: the same numbers within rounding, more memory and time. Tests hold the two equal.
"""

from __future__ import annotations

from torch import nn


def set_fused(model: nn.Module, fused: bool) -> nn.Module:
    """Set ``fused`` on every submodule that has a fused path (the model itself included); returns model."""
    for module in model.modules():
        if hasattr(module, "fused"):
            module.fused = fused
    return model
