"""The registry of sequence mixers: name -> class, built with validated keyword options."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from .attention import CausalSelfAttention
from .mamba_mixer import Mamba
from .mamba_s4d import MambaS4D
from .s4d import S4D

MIXERS: dict[str, type[nn.Module]] = {
    "Mamba1": Mamba,
    "S4D": S4D,
    "MambaS4D": MambaS4D,
    "MHA": CausalSelfAttention,
}
"""Every mixer maps (batch, seqlen, d_model) -> (batch, seqlen, d_model) and takes
``forward(hidden_states, seq_idx=None, inference_params=None)``."""


def build_mixer(
    layer: str, d_model: int, layer_idx: int | None = None, device=None, dtype=None, **options: Any
) -> nn.Module:
    """Instantiate mixer ``layer`` ("Mamba1", "S4D", "MambaS4D" or "MHA") with its options (e.g. d_state,
    n_head)."""
    if layer not in MIXERS:
        raise ValueError(f"unknown mixer {layer!r}; choose one of {sorted(MIXERS)}")
    cls = MIXERS[layer]
    accepted = set(inspect.signature(cls.__init__).parameters) - {
        "self",
        "d_model",
        "layer_idx",
        "device",
        "dtype",
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"{layer} mixer: unknown option(s) {unknown}; valid options are {sorted(accepted)}")
    return cls(d_model, layer_idx=layer_idx, device=device, dtype=dtype, **options)
