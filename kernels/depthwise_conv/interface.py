"""``causal_conv1d_fn``: the public entry point, dispatching to the Triton kernel or the PyTorch path."""

from __future__ import annotations

import torch

from ..dispatch import triton_runs_on
from .checks import check_conv_args, weight_2d
from .torch_conv import causal_conv1d_torch


def final_conv_states(x: torch.Tensor, width: int, initial_states: torch.Tensor | None) -> torch.Tensor:
    """The last width - 1 inputs (batch, dim, width - 1) in x's dtype, left-padded with the end of
    initial_states (or zeros) when seqlen < width - 1. Differentiable; reads only the tail of x."""
    batch, dim, seqlen = x.shape
    keep = width - 1
    tail = x[:, :, max(seqlen - keep, 0) :]
    if tail.shape[-1] == keep:
        return tail.contiguous()
    if initial_states is None:
        history = x.new_zeros(batch, dim, keep)
    else:
        history = initial_states.to(x.dtype)
    return torch.cat([history, tail], dim=-1)[:, :, -keep:]


def causal_conv1d_fn(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    activation: str | None = None,
    initial_states: torch.Tensor | None = None,
    return_final_states: bool = False,
):
    """Causal depthwise convolution (Mamba's short conv), fused, differentiable in x, weight, bias and
    initial_states.

    y[b, d, t] = act(bias[d] + sum_k weight[d, k] * x[b, d, t - (width - 1) + k]), accumulated in fp32;
    inputs before t = 0 are initial_states (or 0), and with seq_idx a tap that would read an earlier
    document reads 0 instead (initial_states belong to the row's first document).

    Args:
        x: (batch, dim, seqlen) fp32/fp16/bf16, any strides; a (batch, dim, seqlen) view of channel-last
            memory (x.stride(1) == 1, e.g. a slice of a Linear output transposed) is read without a copy.
        weight: (dim, width) or nn.Conv1d's (dim, 1, width), width 2 to 4, any float dtype (fp32 with
            bf16 x is fine). bias: (dim,) or None.
        seq_idx: (batch, seqlen) int32, non-decreasing along each row (packed documents).
        activation: None, or "silu" (alias "swish").
        initial_states: (batch, dim, width - 1): the inputs at t = -(width - 1) .. -1, oldest first.
        return_final_states: also return the last width - 1 inputs (the decode path's conv state).
    Returns:
        y (batch, dim, seqlen) in x's dtype and layout kind (channel-last memory viewed as (batch, dim,
        seqlen) when x.stride(1) == 1, else contiguous), or (y, final_states (batch, dim, width - 1)
        in x's dtype).
    """
    check_conv_args(x, weight, bias, seq_idx, activation, initial_states)
    silu = activation is not None
    if triton_runs_on(x):
        from .triton_conv import causal_conv1d_triton

        y = causal_conv1d_triton(x, weight, bias, seq_idx, silu, initial_states)
    else:
        y = causal_conv1d_torch(x, weight, bias, seq_idx, silu, initial_states)
    if return_final_states:
        return y, final_conv_states(x, weight_2d(weight).shape[1], initial_states)
    return y
