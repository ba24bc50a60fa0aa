"""Normalization layers: RMSNorm, and a factory for the norms the models can choose."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last dimension (statistics in fp32)."""

    def __init__(self, d_model: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d_model), cast to the weight's dtype first; returns the same shape in that dtype."""
        return F.rms_norm(x.to(self.weight.dtype), (self.weight.shape[0],), self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm that casts its input to the weight's dtype first (an fp32 residual, bf16 weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(self.weight.dtype))


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels (last dim) of a (batch, seqlen, d_model) tensor, as in S4's LRA models."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(self.weight.dtype).transpose(1, 2)).transpose(1, 2)


def make_norm(kind: str, d_model: int, eps: float = 1e-5, device=None, dtype=None) -> nn.Module:
    """A norm over the last dimension: kind "rms", "layer" or "batch"."""
    if kind == "rms":
        return RMSNorm(d_model, eps=eps, device=device, dtype=dtype)
    if kind == "layer":
        return LayerNorm(d_model, eps=eps, device=device, dtype=dtype)
    if kind == "batch":
        return ChannelBatchNorm(d_model, eps=eps, device=device, dtype=dtype)
    raise ValueError(f'norm kind must be "rms", "layer" or "batch", got {kind!r}')
