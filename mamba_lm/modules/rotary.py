"""Rotary position embedding (RoPE) in the rotate-half layout (GPT-NeoX / Hugging Face Llama).

The two halves of each head's vector form the (real, imaginary) pairs: dimension i pairs with
i + head_dim/2, rotated by angle position * theta^(-2i/head_dim).
"""

from __future__ import annotations

import torch


def rotary_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """positions: (batch, seqlen) int. Returns cos, sin: (batch, seqlen, 1, head_dim) fp32."""
    inv_freq = theta ** (
        -torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim
    )
    angles = positions.float()[..., None] * inv_freq  # (batch, seqlen, head_dim / 2)
    angles = torch.cat((angles, angles), dim=-1)[:, :, None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (batch, seqlen, n_head, head_dim); cos, sin from ``rotary_cos_sin``. Returns x rotated."""
    xf = x.float()
    half = x.shape[-1] // 2
    rotated_half = torch.cat((-xf[..., half:], xf[..., :half]), dim=-1)
    return (xf * cos + rotated_half * sin).to(x.dtype)
