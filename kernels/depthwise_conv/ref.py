"""The ground truth: the causal depthwise convolution written out as a sum over windows, in fp32 PyTorch.

Obviously correct and memory-hungry (it materialises every window); every faster implementation in
this package is tested against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import check_conv_args, weight_2d


def causal_conv1d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    activation: str | None = None,
    initial_states: torch.Tensor | None = None,
    return_final_states: bool = False,
):
    """Reference of ``kernels.causal_conv1d_fn`` (see there for the contract).

    x: (batch, dim, seqlen); weight: (dim, width) or (dim, 1, width); bias: (dim,);
    seq_idx: (batch, seqlen) int, non-decreasing; initial_states: (batch, dim, width - 1), the inputs
    just before t = 0 (they belong to the row's first document).
    Returns y (batch, dim, seqlen) in x's dtype, and final_states (batch, dim, width - 1) in x's dtype
    if ``return_final_states``. Differentiable in every floating input.
    """
    check_conv_args(x, weight, bias, seq_idx, activation, initial_states)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    w = weight_2d(weight).to(compute)  # (dim, width)
    batch, dim, seqlen = x.shape
    width = w.shape[1]
    if initial_states is None:
        history = x.new_zeros(batch, dim, width - 1, dtype=compute)
    else:
        history = initial_states.to(compute)
    padded = torch.cat([history, x.to(compute)], dim=-1)  # (batch, dim, width - 1 + seqlen)
    windows = padded.unfold(-1, width, 1)  # (batch, dim, seqlen, width): inputs t - width + 1 .. t
    taps = windows * w[None, :, None, :]
    if seq_idx is not None:
        # Inputs before t = 0 belong to the first document; a tap counts only inside t's own document.
        seq_padded = torch.cat([seq_idx[:, :1].expand(batch, width - 1), seq_idx], dim=1)
        same_doc = seq_padded.unfold(-1, width, 1) == seq_idx[:, :, None]  # (batch, seqlen, width)
        taps = taps * same_doc[:, None].to(compute)
    y = taps.sum(-1)
    if bias is not None:
        y = y + bias.to(compute)[:, None]
    if activation is not None:
        y = F.silu(y)
    y = y.to(x.dtype)
    if return_final_states:
        return y, padded[:, :, padded.shape[-1] - (width - 1) :].to(x.dtype)
    return y
