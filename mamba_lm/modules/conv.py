"""Mamba's short depthwise causal convolution, in the channel-last layout of the linear layers around it.

Parallel form: a sum over the kernel's few taps (no loop over time), each tap a shifted multiply-add,
accumulated in fp32; with ``seq_idx`` a tap is dropped where it would reach into the previous document.
Recurrent form: a rolling window of the last ``width`` inputs (the conv state).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .packing import document_positions


def causal_depthwise_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    silu: bool = True,
) -> torch.Tensor:
    """out[b, t, d] = act(bias[d] + sum_k weight[d, k] * x[b, t - (width - 1) + k, d]); x = 0 before t = 0.

    x: (batch, seqlen, dim), any strides (e.g. a chunk of a linear layer's output), any float dtype.
    weight: (dim, width) or nn.Conv1d's (dim, 1, width). bias: (dim,) or None.
    seq_idx: (batch, seqlen) int or None; inputs of an earlier document do not reach a later one.
    Returns (batch, seqlen, dim) contiguous, in x's dtype (accumulated in fp32), with SiLU if ``silu``.
    """
    weight = weight.reshape(weight.shape[0], -1).float()  # (dim, width)
    width = weight.shape[1]
    seqlen = x.shape[1]
    pos_in_doc = document_positions(seq_idx)[1] if seq_idx is not None else None
    # The tap that reads x[t] itself starts the sum (fp32 by type promotion with the fp32 weight).
    out = torch.addcmul(bias.float(), x, weight[:, -1]) if bias is not None else x * weight[:, -1]
    for shift in range(1, min(width, seqlen)):
        earlier = x[:, :-shift]  # x[t - shift] for t >= shift
        if pos_in_doc is not None:
            earlier = earlier * (pos_in_doc[:, shift:, None] >= shift)
        out[:, shift:].addcmul_(earlier, weight[:, width - 1 - shift])
    if silu:
        out = F.silu(out)
    return out.to(x.dtype)


def conv_state_from_inputs(x: torch.Tensor, width: int) -> torch.Tensor:
    """The conv state after a prompt: its last ``width`` inputs, left-padded with zeros.

    x: (batch, seqlen, dim). Returns (batch, dim, width), the reference implementation's layout.
    """
    return F.pad(x.transpose(1, 2), (width - x.shape[1], 0))


def causal_depthwise_conv_step(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    silu: bool = True,
) -> torch.Tensor:
    """One step of the recurrent form; updates ``conv_state`` in place.

    x: (batch, dim) the new input. conv_state: (batch, dim, width) the last ``width`` inputs, oldest first.
    weight: (dim, width) or (dim, 1, width). Returns (batch, dim) in x's dtype.
    """
    weight = weight.reshape(weight.shape[0], -1).float()
    conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
    conv_state[:, :, -1] = x
    out = (conv_state.float() * weight).sum(dim=-1)
    if bias is not None:
        out = out + bias.float()
    if silu:
        out = F.silu(out)
    return out.to(x.dtype)
