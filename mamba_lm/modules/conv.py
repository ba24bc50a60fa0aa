"""Mamba's short causal depthwise convolution: its parameters and the conv state it carries from a prompt
into decoding.

The convolution itself is ``kernels.causal_conv1d_fn`` (parallel form) and ``kernels.conv_state_update``
(one step); the decode cache keeps the last ``width`` inputs of each channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def depthwise_conv1d(channels: int, width: int, bias: bool = True, device=None, dtype=None) -> nn.Conv1d:
    """The convolution's parameters as the reference implementation lays them out: a depthwise
    ``nn.Conv1d`` whose (channels, 1, width) weight and (channels,) bias the kernels read (the module's
    own forward is not used)."""
    return nn.Conv1d(
        channels, channels, width, groups=channels, padding=width - 1, bias=bias, device=device, dtype=dtype
    )


def empty_conv_state(conv: nn.Conv1d, batch_size: int, dtype=None, device=None) -> torch.Tensor:
    """The decode cache of ``conv`` before any input: zeros (batch, channels, width), in the weight's
    dtype and on its device unless ``dtype`` / ``device`` say otherwise ("meta" sizes it)."""
    channels, _, width = conv.weight.shape
    return torch.zeros(
        batch_size,
        channels,
        width,
        device=conv.weight.device if device is None else device,
        dtype=conv.weight.dtype if dtype is None else dtype,
    )


def conv_state_from_inputs(x: torch.Tensor, width: int) -> torch.Tensor:
    """The conv state after a prompt: its last ``width`` inputs, left-padded with zeros.

    x: (batch, seqlen, dim). Returns (batch, dim, width), the reference implementation's layout.
    """
    return F.pad(x.transpose(1, 2), (width - x.shape[1], 0))
