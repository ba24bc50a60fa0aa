"""The Mamba mixer (S6): selective state-space layer with the reference implementation's layout and init.

    x, z   = in_proj(h).chunk(2)                     (batch, seqlen, d_inner) each
    x      = silu(causal depthwise conv(x))
    dt,B,C = x_proj(x) split [dt_rank, d_state, d_state]
    y      = selective_scan(x, dt_proj(dt), A=-exp(A_log), B, C, D, z, softplus(. + dt_bias))
    out    = out_proj(y)

Training runs everything up to out_proj as one memory-lean autograd Function (``mamba_inner``: the
conv output and delta are recomputed in the backward instead of stored).
Parameter names equal the reference's, so its state_dict loads unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mamba_lm.kernels import causal_conv1d_fn, conv_state_update, selective_scan_fn, selective_state_update

from .conv import conv_state_from_inputs, depthwise_conv1d, empty_conv_state
from .mamba_inner import mamba_inner


class Mamba(nn.Module):
    """Mamba (S6) mixer. Input and output (batch, seqlen, d_model)."""

    fused = True
    """Training (autograd on, no cache) through the memory-lean ``mamba_inner`` Function (True), or the
    composition of autograd ops that keeps every intermediate (False, the reference)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        layer_idx: int | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.layer_idx = layer_idx

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **factory)
        self.conv1d = depthwise_conv1d(self.d_inner, d_conv, conv_bias, **factory)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

        # dt_proj: weight uniform +-dt_rank^-0.5 (or constant); bias = softplus^-1(dt), dt log-uniform.
        dt_init_std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, dt_init_std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)
        else:
            raise ValueError(f'dt_init must be "random" or "constant", got {dt_init!r}')
        log_dt = torch.rand(self.d_inner, device=device) * (math.log(dt_max) - math.log(dt_min)) + math.log(
            dt_min
        )
        dt = torch.exp(log_dt).clamp(min=dt_init_floor)
        inv_softplus_dt = dt + torch.log(-torch.expm1(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(inv_softplus_dt)
        self.dt_proj.bias._no_reinit = True  # the LM's weight init must keep this bias

        # S4D-real: A[d, n] = -(n + 1), stored as log; D = 1. Both fp32 and without weight decay.
        A = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.d_inner, dtype=torch.float32, device=device))
        self.D._no_weight_decay = True

    def forward(
        self, hidden_states: torch.Tensor, seq_idx: torch.Tensor | None = None, inference_params=None
    ):
        """hidden_states: (batch, seqlen, d_model). seq_idx: (batch, seqlen) int (packed documents).

        With ``inference_params`` at seqlen_offset 0 the parallel form runs and fills the cache;
        later calls take one token (seqlen 1) and run the recurrent step.
        Returns (batch, seqlen, d_model) in the input's (or autocast's) dtype.
        """
        batch, seqlen, _ = hidden_states.shape
        conv_state = ssm_state = None
        if inference_params is not None:
            conv_state, ssm_state = inference_params.layer_state(self, batch, seq_idx)
            if inference_params.seqlen_offset > 0:
                return self.step(hidden_states, conv_state, ssm_state)

        seq_idx = seq_idx.to(torch.int32) if seq_idx is not None else None
        if self.fused and torch.is_grad_enabled() and inference_params is None:
            y = mamba_inner(
                hidden_states,
                self.in_proj.weight,
                self.in_proj.bias,
                self.conv1d.weight,
                self.conv1d.bias,
                self.x_proj.weight,
                self.dt_proj.weight,
                self.dt_proj.bias,
                self.A_log,
                self.D,
                seq_idx,
            )
            return self.out_proj(y)  # (batch, seqlen, d_model)
        # The composition of autograd ops (inference, cache filling, the unfused reference path): the
        # conv and the scan read (batch, dim, seqlen) views of these channel-last tensors without copies.
        xz = self.in_proj(hidden_states)  # (batch, seqlen, 2 * d_inner)
        x, z = xz.chunk(2, dim=-1)  # views, stride 2 * d_inner along seqlen
        if conv_state is not None:
            conv_state.copy_(conv_state_from_inputs(x, self.d_conv))
        x = causal_conv1d_fn(x.transpose(1, 2), self.conv1d.weight, self.conv1d.bias, seq_idx, "silu")
        x_dbl = self.x_proj(x.transpose(1, 2))  # (batch, seqlen, dt_rank + 2 * d_state)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)  # (batch, seqlen, d_inner); the bias goes into the scan
        A = -torch.exp(self.A_log.float())  # (d_inner, d_state)
        y = selective_scan_fn(
            x,
            dt.transpose(1, 2),
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            self.D.float(),
            z=z.transpose(1, 2),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            return_last_state=ssm_state is not None,
            seq_idx=seq_idx,
        )
        if ssm_state is not None:
            y, last_state = y
            ssm_state.copy_(last_state)
        return self.out_proj(y.transpose(1, 2))  # (batch, seqlen, d_model)

    def step(
        self, hidden_states: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor
    ) -> torch.Tensor:
        """The recurrent form for one token. hidden_states: (batch, 1, d_model);
        conv_state: (batch, d_inner, d_conv); ssm_state: (batch, d_inner, d_state) fp32; updated in place.
        Returns (batch, 1, d_model).

        Three launches besides in_proj and out_proj: the conv window update, x_proj, and the fused state
        update with dt_proj inside (kernels.selective_state_update). Nothing reads a value back to the
        host, so the step can be captured in a CUDA graph."""
        if hidden_states.shape[1] != 1:
            raise ValueError(
                f"Mamba.step takes one token at a time after the prompt, got seqlen={hidden_states.shape[1]}"
            )
        xz = self.in_proj(hidden_states[:, 0])  # (batch, 2 * d_inner)
        x, z = xz.chunk(2, dim=-1)  # strided views
        x = conv_state_update(x, conv_state, self.conv1d.weight, self.conv1d.bias, silu=True)
        dt_low, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        y = selective_state_update(
            ssm_state,
            x,
            dt_low,  # (batch, dt_rank): the kernel applies dt_proj's weight, then its bias and softplus
            self.A_log,
            B,
            C,
            self.D,
            z=z,
            dt_bias=self.dt_proj.bias,
            dt_softplus=True,
            a_is_log=True,  # A = -exp(A_log), taken inside the kernel
            dt_proj_weight=self.dt_proj.weight,
        )
        return self.out_proj(y)[:, None, :]

    def allocate_inference_cache(
        self, batch_size: int, max_seqlen: int, dtype=None, device=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv_state (batch, d_inner, d_conv) in the conv weight's dtype (or ``dtype``),
        ssm_state (batch, d_inner, d_state) fp32), zeros, on the weights' device (or ``device``:
        "meta" sizes a cache without allocating it). max_seqlen does not matter: the state is fixed-size."""
        conv_state = empty_conv_state(self.conv1d, batch_size, dtype, device)
        device = self.out_proj.weight.device if device is None else device
        ssm_state = torch.zeros(batch_size, self.d_inner, self.d_state, device=device, dtype=torch.float32)
        return conv_state, ssm_state
