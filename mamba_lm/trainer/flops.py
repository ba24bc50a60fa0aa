"""Model FLOPs per token and MFU (model FLOPs utilization).

FLOPs per trained token (forward + backward = 3 x forward):

* matrix multiplies: 6 N, N = parameters that multiply activations (every parameter once; an
  embedding table counts only when it is tied to the output layer, whose matmul it then stands for);
* attention (PaLM's convention, no discount for the causal mask): 12 x n_layer x d_model x seqlen;
* selective scan (Mamba): 3 x 9 x d_inner x d_state per layer (discretize, exp, update, read out);
* S4D's FFT convolution: 3 x (3 FFTs of length 2 x seqlen, ~10 log2(2 seqlen) FLOPs per channel
  and token) + the kernel's d_state work, per layer.

MFU = achieved model FLOP/s / peak FLOP/s of the devices. The peak comes from the config, or
from the device's name for known GPUs (dense bf16 tensor-core rates from the datasheets).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

PEAK_BF16_FLOPS = {  # device-name substring -> dense bf16 FLOP/s
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
}


def matmul_parameter_count(model: nn.Module) -> int:
    """Parameters that take part in a matmul per token: all, except embedding tables not tied to a Linear."""
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    lookup_only = {
        id(m.weight)
        for m in model.modules()
        if isinstance(m, nn.Embedding) and id(m.weight) not in linear_weights
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in lookup_only)


def _field(config: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def mixing_flops_per_token(config: Any, seqlen: int) -> float:
    """FLOPs per token (forward + backward) of sequence mixing that 6N does not count.

    ``config`` is a model config (MambaConfig, TransformerConfig, or a classifier config); its
    fields ``n_layer``, ``d_model`` and, for SSMs, ``d_state``, ``expand`` and the mixer choice
    (``ssm_cfg["layer"]`` or ``mixer``) are read. Unknown kinds contribute 0.
    """
    n_layer = _field(config, "n_layer", "num_layers", default=0)
    d_model = _field(config, "d_model", "hidden_size", default=0)
    ssm_cfg = _field(config, "ssm_cfg", default={}) or {}
    mixer = str(_field(config, "mixer", default=ssm_cfg.get("layer", ""))).lower()
    if "n_head" in vars(config) or "attention" in mixer or "transformer" in type(config).__name__.lower():
        return 12.0 * n_layer * d_model * seqlen
    d_state = ssm_cfg.get("d_state", _field(config, "d_state", default=16))
    d_inner = ssm_cfg.get("expand", _field(config, "expand", default=2)) * d_model
    if "s4d" in mixer:  # S4D on d_model channels; inside the Mamba block (mambas4d) on d_inner
        fft = 3 * 10 * math.log2(max(2, 2 * seqlen))
        channels = d_inner if mixer.startswith("mamba") else d_model
        return 3.0 * n_layer * channels * (fft + 8 * d_state)
    if "mamba" in mixer or "mamba" in type(config).__name__.lower():
        return 3.0 * 9 * n_layer * d_inner * d_state
    return 0.0


def model_flops_per_token(model: nn.Module, seqlen: int, config: Any | None = None) -> float:
    """Training FLOPs per token: 6 x matmul parameters + sequence mixing (see the module docstring)."""
    config = config if config is not None else getattr(model, "config", None)
    mixing = mixing_flops_per_token(config, seqlen) if config is not None else 0.0
    return 6.0 * matmul_parameter_count(model) + mixing


def peak_flops_per_device(device: torch.device, configured: float | None = None) -> float | None:
    """Peak FLOP/s of one device: the configured value, else a known GPU's bf16 rate, else None (no MFU)."""
    if configured is not None:
        return configured
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)
