"""``layer_norm_fn`` / ``rms_norm_fn``: the public entry points, dispatching to Triton or PyTorch."""

from __future__ import annotations

import torch

from ..dispatch import triton_runs_on
from .checks import check_norm_args
from .ref import layer_norm_ref

# The Triton kernels hold whole rows in registers: wider rows take the PyTorch path.
MAX_TRITON_WIDTH = 16384


def layer_norm_fn(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    eps: float = 1e-5,
    prenorm: bool = False,
    residual_in_fp32: bool = False,
    is_rms_norm: bool = False,
    out_dtype: torch.dtype | None = None,
):
    """Fused residual add + LayerNorm (or RMSNorm), differentiable in x, weight, bias and residual.

    new_residual = x + residual (x alone when residual is None), summed in fp32; y = norm(new_residual)
    * weight (+ bias) with fp32 statistics over the last dimension. One read of x and residual, one
    write of y and new_residual; the backward recomputes the normalized values from new_residual.

    Args:
        x: (..., d), fp32/fp16/bf16.  residual: (..., d) or None, any float dtype.
        weight, bias: (d,), any float dtype.  eps: added to the variance.
        prenorm: also return new_residual (the next block's residual input).
        residual_in_fp32: keep new_residual in fp32 (it is fp32 anyway when residual is).
        is_rms_norm: RMSNorm (no mean subtraction) instead of LayerNorm.
        out_dtype: dtype of y (default x's dtype).
    Returns:
        y (..., d) in out_dtype, or (y, new_residual) when prenorm; new_residual in fp32 when
        residual_in_fp32 or residual is fp32, else in x's dtype.
    """
    check_norm_args(x, weight, bias, residual, eps, out_dtype)
    args = (x, weight, bias, residual, eps, prenorm, residual_in_fp32, is_rms_norm, out_dtype)
    use_triton = triton_runs_on(x) and x.shape[-1] <= MAX_TRITON_WIDTH and x.numel() > 0
    if not use_triton:
        return layer_norm_ref(*args)
    from .triton_norm import layer_norm_triton

    return layer_norm_triton(*args)


def rms_norm_fn(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    eps: float = 1e-5,
    prenorm: bool = False,
    residual_in_fp32: bool = False,
    out_dtype: torch.dtype | None = None,
):
    """``layer_norm_fn(..., is_rms_norm=True)``: y = new_residual / rms(new_residual) * weight (+ bias)."""
    return layer_norm_fn(
        x, weight, bias, residual, eps, prenorm, residual_in_fp32, is_rms_norm=True, out_dtype=out_dtype
    )
