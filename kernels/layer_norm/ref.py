"""The ground truth for the fused norm, in plain fp32 PyTorch; also the CPU path of ``layer_norm_fn``."""

from __future__ import annotations

import torch

from .checks import residual_dtype


def layer_norm_ref(
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
    """Residual add then LayerNorm (or RMSNorm) over the last dimension, every step in fp32 (fp64 for
    fp64 x, so that gradcheck can check this path).

    new_residual = x + residual (x alone when residual is None);
    y = (new_residual - mean) / sqrt(var + eps) * weight + bias   (LayerNorm)
    y = new_residual / sqrt(mean(new_residual^2) + eps) * weight + bias   (RMSNorm)

    Args:
        x, residual: (..., d), any float dtypes.  weight, bias: (d,).
    Returns:
        y (..., d) in out_dtype (default x's dtype), or (y, new_residual) when prenorm, new_residual in
        fp32 when residual_in_fp32 or residual is fp32, else in x's dtype.
    """
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    z = x.to(acc) if residual is None else x.to(acc) + residual.to(acc)
    if is_rms_norm:
        z_centered = z
    else:
        z_centered = z - z.mean(dim=-1, keepdim=True)
    rstd = torch.rsqrt(z_centered.square().mean(dim=-1, keepdim=True) + eps)
    y = z_centered * rstd * weight.to(acc)
    if bias is not None:
        y = y + bias.to(acc)
    y = y.to(out_dtype or x.dtype)
    if not prenorm:
        return y
    return y, z.to(residual_dtype(x, residual, residual_in_fp32))
