"""Validation of the norm arguments, shared by the Triton kernels and the PyTorch path."""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def residual_dtype(x: torch.Tensor, residual: torch.Tensor | None, residual_in_fp32: bool) -> torch.dtype:
    """The dtype of new_residual = x + residual: fp32 when asked for or when residual is fp32, else x's."""
    if residual_in_fp32 or (residual is not None and residual.dtype == torch.float32):
        return torch.float32
    return x.dtype


def check_norm_args(x, weight, bias, residual, eps, out_dtype) -> None:
    """Raise ValueError naming the bad argument, what it was and what was expected."""

    def fail(msg: str) -> None:
        raise ValueError(f"layer_norm: {msg}")

    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        fail(f"x must be a (..., d) tensor, got {getattr(x, 'shape', type(x))}")
    if x.dtype not in FLOAT_DTYPES:
        fail(f"x must be a floating tensor (fp32, fp16 or bf16), got {x.dtype}")
    d = x.shape[-1]
    if d == 0:
        fail("x's last dimension (the normalized width) must not be empty")
    if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != (d,):
        fail(f"weight must be (d,) = ({d},), got {tuple(getattr(weight, 'shape', ()))}")
    if bias is not None and tuple(bias.shape) != (d,):
        fail(f"bias must be (d,) = ({d},), got {tuple(bias.shape)}")
    for name, t in (("weight", weight), ("bias", bias), ("residual", residual)):
        if t is not None and t.dtype not in FLOAT_DTYPES:
            fail(f"{name} must be a floating tensor, got {t.dtype}")
    if residual is not None and residual.shape != x.shape:
        fail(f"residual must have x's shape {tuple(x.shape)}, got {tuple(residual.shape)}")
    if not eps > 0:
        fail(f"eps must be positive, got {eps}")
    if out_dtype is not None and out_dtype not in FLOAT_DTYPES:
        fail(f"out_dtype must be a floating dtype or None, got {out_dtype}")
    devices = {t.device for t in (x, weight, bias, residual) if t is not None}
    if len(devices) > 1:
        fail(f"all tensors must be on one device, got {sorted(map(str, devices))}")
