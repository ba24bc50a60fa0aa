"""Normalization layers that also take the residual add before them: RMSNorm, LayerNorm, BatchNorm.

Every norm here is called as ``norm(x, residual=None, prenorm=False)``: it normalizes
new_residual = x + residual (x alone when residual is None) and, with ``prenorm``, also returns
new_residual, the residual stream the next block continues from. new_residual is fp32 when residual
is fp32, else x's dtype. The output y is written in ``out_dtype``; by default autocast's dtype when
autocast is on (the mixer's matmuls read it without another cast pass), else the weight's dtype.

RMSNorm and LayerNorm run the add and the norm as one fused kernel (``kernels.rms_norm_fn`` /
``layer_norm_fn``); with ``fused = False`` (see ``mamba_lm.modules.fusion.set_fused``) they run the unfused
PyTorch composition instead, the reference the fused path is tested against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from mamba_lm.kernels import layer_norm_fn


def norm_output_dtype(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """Autocast's dtype when autocast is on for x's device, else the weight's dtype."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return weight.dtype


def add_residual(x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """new_residual = x + residual, in fp32 when either is fp32 (type promotion), x itself when None."""
    return x if residual is None else residual + x


class _ResidualNorm(nn.Module, ABC):
    """The ``(x, residual=None, prenorm=False)`` calling convention around ``_normalize``."""

    fused = True
    """Run the fused add + norm kernel (True) or the unfused PyTorch composition (False)."""

    def forward(
        self,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        prenorm: bool = False,
        out_dtype: torch.dtype | None = None,
    ):
        """x, residual: (..., d_model). out_dtype: y's dtype (default ``norm_output_dtype``).
        Returns y (..., d_model), or (y, new_residual) with prenorm."""
        out_dtype = out_dtype or norm_output_dtype(x, self.weight)
        if self.fused:
            return layer_norm_fn(
                x,
                self.weight,
                self.bias,
                residual=residual,
                eps=self.eps,
                prenorm=prenorm,
                is_rms_norm=self.is_rms_norm,
                out_dtype=out_dtype,
            )
        new_residual = add_residual(x, residual)
        y = self._normalize(new_residual).to(out_dtype)
        return (y, new_residual) if prenorm else y

    @abstractmethod
    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The unfused norm of x (..., d_model) with this module's weight (and bias)."""


class RMSNorm(_ResidualNorm):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last dimension (statistics in fp32)."""

    is_rms_norm = True
    bias = None

    def __init__(self, d_model: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.to(self.weight.dtype), (self.weight.shape[0],), self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class LayerNorm(_ResidualNorm, nn.LayerNorm):
    """nn.LayerNorm (its parameters and state_dict) with the residual-add calling convention."""

    is_rms_norm = False

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.to(self.weight.dtype), self.normalized_shape, self.weight, self.bias, self.eps)


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels (last dim) of a (batch, seqlen, d_model) tensor, as in S4's LRA models.
    Same calling convention; no fused kernel. The statistics run over batch and sequence together, so the
    (batch * seqlen, d_model) view is normalized as is: no transpose to (batch, d_model, seqlen) and back,
    which would copy the tensor (not contiguous) on its way in and out of the kernel."""

    def forward(
        self,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        prenorm: bool = False,
        out_dtype: torch.dtype | None = None,
    ):
        new_residual = add_residual(x, residual)
        stream = new_residual.to(self.weight.dtype)
        y = super().forward(stream.reshape(-1, stream.shape[-1])).view(stream.shape)
        y = y.to(out_dtype or self.weight.dtype)
        return (y, new_residual) if prenorm else y


def make_norm(kind: str, d_model: int, eps: float = 1e-5, device=None, dtype=None) -> nn.Module:
    """A norm over the last dimension: kind "rms", "layer" or "batch"."""
    if kind == "rms":
        return RMSNorm(d_model, eps=eps, device=device, dtype=dtype)
    if kind == "layer":
        return LayerNorm(d_model, eps=eps, device=device, dtype=dtype)
    if kind == "batch":
        return ChannelBatchNorm(d_model, eps=eps, device=device, dtype=dtype)
    raise ValueError(f'norm kind must be "rms", "layer" or "batch", got {kind!r}')
