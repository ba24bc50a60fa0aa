"""The PyTorch path of the causal depthwise convolution (CPUs without Triton's interpreter).

Parallel form: a sum over the kernel's few taps (no loop over time), each tap a shifted multiply-add
accumulated in fp32 (fp64 for fp64 inputs); with ``seq_idx`` a tap is dropped where it would reach
into the previous document. Differentiable through autograd. Elementwise ops keep x's memory order,
so a view of channel-last memory gives a channel-last result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import weight_2d


def positions_in_document(seq_idx: torch.Tensor) -> torch.Tensor:
    """(batch, seqlen) int document ids, non-decreasing -> (batch, seqlen) int64: the position of
    each step inside its document (0 where a document starts, i.e. where seq_idx changes)."""
    batch, seqlen = seq_idx.shape
    starts = torch.ones(batch, seqlen, dtype=torch.bool, device=seq_idx.device)
    starts[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
    t = torch.arange(seqlen, device=seq_idx.device).expand(batch, seqlen)
    return t - torch.where(starts, t, 0).cummax(dim=1).values


def causal_conv1d_torch(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    seq_idx: torch.Tensor | None,
    silu: bool,
    initial_states: torch.Tensor | None,
) -> torch.Tensor:
    """y[b, d, t] = act(bias[d] + sum_k weight[d, k] * x[b, d, t - (width - 1) + k]).

    x: (batch, dim, seqlen), any strides, any float dtype; weight (dim, width) or (dim, 1, width);
    bias (dim,) or None; seq_idx (batch, seqlen) int or None; initial_states (batch, dim, width - 1)
    or None: the inputs at t = -(width - 1) .. -1 (zeros if None; they belong to the first document).
    Returns (batch, dim, seqlen) in x's dtype and layout kind (channel-last stays channel-last).
    """
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    w = weight_2d(weight).to(compute)  # (dim, width)
    width, seqlen = w.shape[1], x.shape[2]
    pos_in_doc = positions_in_document(seq_idx)[:, None, :] if seq_idx is not None else None
    # The tap that reads x[t] itself starts the sum (fp32 by type promotion with the fp32 weight).
    if bias is not None:
        out = torch.addcmul(bias.to(compute)[:, None], x, w[:, -1:])
    else:
        out = x * w[:, -1:]
    for shift in range(1, width):
        w_tap = w[:, width - 1 - shift, None]  # weight of input t - shift
        if shift < seqlen:
            earlier = x[:, :, :-shift]  # x[t - shift] for t >= shift
            if pos_in_doc is not None:
                earlier = earlier * (pos_in_doc[:, :, shift:] >= shift)
            out[:, :, shift:].addcmul_(earlier, w_tap)
        if initial_states is not None:
            n = min(shift, seqlen)  # steps t < shift read initial_states[..., width - 1 + t - shift]
            history = initial_states[:, :, width - 1 - shift : width - 1 - shift + n]
            if pos_in_doc is not None:  # only the first document continues from initial_states
                history = history * (pos_in_doc[:, :, :n] == torch.arange(n, device=x.device))
            out[:, :, :n].addcmul_(history, w_tap)
    if silu:
        out = F.silu(out)
    return out.to(x.dtype)
