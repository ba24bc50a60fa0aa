"""Validation of the arguments of the linear cross-entropy (chunked and reference)."""

from __future__ import annotations

import torch


def check_cross_entropy_args(hidden, weight, labels, chunk_size) -> None:
    """Raise ValueError naming the bad argument, what it was and what was expected."""

    def fail(msg: str) -> None:
        raise ValueError(f"linear_cross_entropy: {msg}")

    if not isinstance(hidden, torch.Tensor) or hidden.dim() < 1 or not hidden.dtype.is_floating_point:
        fail(f"hidden must be a floating (..., d) tensor, got {getattr(hidden, 'dtype', type(hidden))}")
    d = hidden.shape[-1]
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[1] != d:
        fail(f"weight must be (vocab, d={d}), got {tuple(getattr(weight, 'shape', ()))}")
    if not weight.dtype.is_floating_point:
        fail(f"weight must be a floating tensor, got {weight.dtype}")
    if not isinstance(labels, torch.Tensor) or labels.shape != hidden.shape[:-1]:
        fail(f"labels must have hidden's leading shape {tuple(hidden.shape[:-1])}, got "
             f"{tuple(getattr(labels, 'shape', ()))}")  # fmt: skip
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        fail(f"labels must be an integer tensor, got {labels.dtype}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        fail(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    devices = {t.device for t in (hidden, weight, labels)}
    if len(devices) > 1:
        fail(f"all tensors must be on one device, got {sorted(map(str, devices))}")


def compute_dtype(hidden: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The matmul dtype: autocast's when autocast is on for hidden's device, else the inputs' own
    (which must then agree, as for F.linear)."""
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    if hidden.dtype != weight.dtype:
        raise ValueError(
            f"linear_cross_entropy: hidden ({hidden.dtype}) and weight ({weight.dtype}) must have the same "
            "dtype outside autocast"
        )
    return hidden.dtype
