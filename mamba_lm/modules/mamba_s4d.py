"""The Mamba block with a time-invariant S4D layer in place of S6: the Mamba paper's "Mamba / S4" rows
(Table 1, selective copying: 56.4%; Table 6's S4 layers inside the Mamba architecture).

    x, z = in_proj(h).chunk(2)                 (batch, seqlen, d_inner) each
    x    = silu(causal depthwise conv(x))
    y    = S4D(x) = K * x + D x                the same kernel K at every position (no input-dependent
                                               Delta, B, C: that is what S6 adds)
    out  = out_proj(y * silu(z))

Everything but the SSM is the Mamba mixer's (``Mamba``): the same projections, convolution and gate, so
the two rows differ in the layer alone. The SSM is ``S4D`` with ``output="none"`` on d_inner channels
(its parameters under ``ssm.``); its init, state size and options are S4D's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mamba_lm.kernels import causal_conv1d_fn, conv_state_update

from .conv import conv_state_from_inputs, depthwise_conv1d, empty_conv_state
from .s4d import S4D


class MambaS4D(nn.Module):
    """Mamba block, S4D layer. Input and output (batch, seqlen, d_model)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        init: str = "lin",
        ssm_lr: float | None = None,
        trainable_B: bool = False,
        n_ssm: int | None = None,
        conv_bias: bool = True,
        bias: bool = False,
        layer_idx: int | None = None,
        device=None,
        dtype=None,
    ):
        """d_conv, expand, conv_bias, bias: as ``Mamba``. d_state, dt_min, dt_max, init, ssm_lr,
        trainable_B, n_ssm: the S4D layer's (``S4D``; n_ssm must divide d_inner)."""
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = expand * d_model
        self.layer_idx = layer_idx
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **factory)
        self.conv1d = depthwise_conv1d(self.d_inner, d_conv, conv_bias, **factory)
        self.ssm = S4D(
            self.d_inner,
            d_state=d_state,
            dt_min=dt_min,
            dt_max=dt_max,
            init=init,
            ssm_lr=ssm_lr,
            trainable_B=trainable_B,
            n_ssm=n_ssm,
            output="none",
            **factory,
        )
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def forward(
        self, hidden_states: torch.Tensor, seq_idx: torch.Tensor | None = None, inference_params=None
    ):
        """hidden_states: (batch, seqlen, d_model). seq_idx: (batch, seqlen) int (packed documents: the
        convolution and the SSM restart at each document). With ``inference_params`` at seqlen_offset 0
        the parallel form runs and fills the cache; later calls take one token and run the recurrence.
        Returns (batch, seqlen, d_model)."""
        batch = hidden_states.shape[0]
        conv_state = ssm_state = None
        if inference_params is not None:
            conv_state, ssm_state = inference_params.layer_state(self, batch, seq_idx)
            if inference_params.seqlen_offset > 0:
                return self.step(hidden_states, conv_state, ssm_state)
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)  # (batch, seqlen, d_inner) views
        if conv_state is not None:
            conv_state.copy_(conv_state_from_inputs(x, self.d_conv))
        conv_seq_idx = seq_idx.to(torch.int32) if seq_idx is not None else None
        x = causal_conv1d_fn(x.transpose(1, 2), self.conv1d.weight, self.conv1d.bias, conv_seq_idx, "silu")
        x = x.transpose(1, 2)  # (batch, seqlen, d_inner)
        y = self.ssm(x, seq_idx=seq_idx)  # (batch, seqlen, d_inner)
        if ssm_state is not None:
            ssm_state.copy_(self.ssm.final_state(x.float()))
        return self.out_proj(y * F.silu(z))

    def step(
        self, hidden_states: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor
    ) -> torch.Tensor:
        """The recurrent form for one token. hidden_states: (batch, 1, d_model); conv_state
        (batch, d_inner, d_conv) and ssm_state (batch, d_inner, d_state / 2) complex64, updated in place.
        Returns (batch, 1, d_model)."""
        if hidden_states.shape[1] != 1:
            raise ValueError(
                "MambaS4D.step takes one token at a time after the prompt, "
                f"got seqlen={hidden_states.shape[1]}"
            )
        x, z = self.in_proj(hidden_states[:, 0]).chunk(2, dim=-1)  # (batch, d_inner) each
        x = conv_state_update(x, conv_state, self.conv1d.weight, self.conv1d.bias, silu=True)
        y = self.ssm.step(x[:, None, :], ssm_state)[:, 0]
        return self.out_proj(y * F.silu(z))[:, None, :]

    def allocate_inference_cache(
        self, batch_size: int, max_seqlen: int, dtype=None, device=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv_state (batch, d_inner, d_conv) in the conv weight's dtype (or ``dtype``), ssm_state
        (batch, d_inner, d_state / 2) complex64), zeros, on the weights' device (or ``device``)."""
        conv_state = empty_conv_state(self.conv1d, batch_size, dtype, device)
        device = self.out_proj.weight.device if device is None else device
        ssm_state = torch.zeros(
            batch_size, self.d_inner, self.d_state // 2, device=device, dtype=torch.cfloat
        )
        return conv_state, ssm_state
