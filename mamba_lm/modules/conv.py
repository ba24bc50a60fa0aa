"""The conv state that Mamba's short causal convolution carries from a prompt into decoding.

The convolution itself is ``kernels.causal_conv1d_fn`` (parallel form) and ``kernels.conv_state_update``
(one step); the decode cache keeps the last ``width`` inputs of each channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv_state_from_inputs(x: torch.Tensor, width: int) -> torch.Tensor:
    """The conv state after a prompt: its last ``width`` inputs, left-padded with zeros.

    x: (batch, seqlen, dim). Returns (batch, dim, width), the reference implementation's layout.
    """
    return F.pad(x.transpose(1, 2), (width - x.shape[1], 0))
