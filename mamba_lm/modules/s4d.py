"""S4D: a diagonal, time-invariant state-space layer (Gu et al. 2022, "On the Parameterization and
Initialization of Diagonal State Space Models").

Per channel h, N/2 complex modes n (the conjugate half is implicit, hence the factor 2 and Re):

    A = -exp(log_A_real) + i A_imag,   dt = exp(log_dt)
    ZOH:   dA = exp(dt A),   dB = (exp(dt A) - 1) / A . B
    RNN:   x[t] = dA x[t-1] + dB u[t],           y[t] = 2 Re(C . x[t]) + D u[t]
    CNN:   K[l] = 2 Re(sum_n C_n dB_n dA_n^l),   y = K * u (causal, by FFT) + D u

Both forms compute the same y ("CNN mode = RNN mode"). The layer then applies GELU and a GLU
output projection, as S4's reference layer does (``output="glu"``), or returns y itself
(``output="none"``: the SSM inside a block that brings its own gate and projection, ``MambaS4D``).
Init (s4d_init.py): S4D-Lin A_n = -1/2 + i pi n, S4D-Inv A_n = -1/2 + i N/pi (N/(2n+1) - 1), or
S4D-LegS (the diagonal part of HiPPO-LegS, with its B); C ~ complex normal. By default B is fixed at
1 (its scale lives in C; LegS's B is a fixed buffer); ``trainable_B`` makes it a parameter, as S4's
LRA models train it. ``n_ssm`` (A, B) copies are shared by the channels (S4's n_ssm; dt, C and D
stay per channel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mamba_lm.kernels import vandermonde_kernel

from .packing import run_per_document
from .s4d_init import S4D_INITS, diagonal_init

__all__ = ["S4D", "S4D_INITS", "fft_convolution", "fft_length"]


def fft_length(seqlen: int) -> int:
    """The FFT length for a linear convolution of length-seqlen signals: the power of two >= 2 * seqlen.
    One length per octave keeps cuFFT's plan cache warm when batches vary in length (LRA pads each batch
    to its longest row) and avoids its slow Bluestein path for lengths with large prime factors. Found by
    comparisons rather than ``bit_length`` so that torch.compile keeps a symbolic seqlen symbolic: one graph
    serves every length of an octave."""
    n = 1
    while n < 2 * seqlen:
        n *= 2
    return n


def fft_convolution(u: torch.Tensor, kernel: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """y = kernel * u + D u along the sequence, computed circularly over the kernel's length.

    u: (batch, L, H) fp32. kernel: (H, L) causal lags 0..L-1, or (H, n) with n = fft_length(L) laid out
    circularly (lag -k at index n - k). D: (H,). Returns (batch, L, H) fp32. The FFTs run along the last
    dimension of a (batch, H, n) layout, contiguous, rather than strided along the middle one."""
    seqlen = u.shape[1]
    n = fft_length(seqlen)
    u_t = u.transpose(1, 2)  # (batch, H, L)
    u_f = torch.fft.rfft(u_t, n=n)  # (batch, H, n/2 + 1); the zero padding makes it contiguous
    y = torch.fft.irfft(u_f * torch.fft.rfft(kernel, n=n), n=n)[..., :seqlen]  # (batch, H, L)
    return torch.addcmul(y, u_t, D[:, None]).transpose(1, 2)  # y + D u in one pass


class S4D(nn.Module):
    """S4D mixer. Input and output (batch, seqlen, d_model); causal."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        init: str = "lin",
        ssm_lr: float | None = None,
        trainable_B: bool = False,
        n_ssm: int | None = None,
        output: str = "glu",
        layer_idx: int | None = None,
        device=None,
        dtype=None,
    ):
        """d_state: N, the real state size (N/2 complex modes). init: "lin", "inv" or "legs".
        ssm_lr: if given, the SSM parameters (log_dt, log_A_real, A_imag and a trainable B) carry
        ``_optim = {"lr": ssm_lr, "weight_decay": 0.0}`` for the trainer (else weight decay 0 only).
        trainable_B: B (n_ssm, N/2) complex is a parameter. n_ssm: independent (A, B) copies, tiled
        over the channels (must divide d_model); None = one per channel. output: "glu" (GELU, then a
        GLU projection ``out_proj``) or "none" (y in the input's dtype, no parameters after the SSM)."""
        super().__init__()
        if output not in ("glu", "none"):
            raise ValueError(f'S4D: output must be "glu" or "none", got {output!r}')
        A_imag_modes, B_modes = diagonal_init(init, d_state)  # validates init and d_state
        n_ssm = d_model if n_ssm is None else n_ssm
        if not isinstance(n_ssm, int) or n_ssm < 1 or d_model % n_ssm != 0:
            raise ValueError(f"S4D: n_ssm must be a positive divisor of d_model={d_model}, got {n_ssm}")
        self.d_model, self.d_state, self.layer_idx = d_model, d_state, layer_idx
        modes = d_state // 2
        A_imag = torch.tensor(A_imag_modes, dtype=torch.float32, device=device).repeat(n_ssm, 1)
        log_dt = torch.rand(d_model, device=device) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        C = torch.randn(d_model, modes, dtype=torch.cfloat, device=device)

        self.log_dt = nn.Parameter(log_dt)
        self.log_A_real = nn.Parameter(torch.full((n_ssm, modes), math.log(0.5), device=device))
        self.A_imag = nn.Parameter(A_imag)  # (n_ssm, N/2)
        B = torch.view_as_real(torch.tensor(B_modes, dtype=torch.cfloat, device=device).repeat(n_ssm, 1))
        if trainable_B:
            self.B = nn.Parameter(B.contiguous())  # (n_ssm, N/2, 2): real and imaginary parts
        elif init == "legs":
            self.register_buffer("B", B.contiguous(), persistent=False)  # fixed, rebuilt at init
        else:
            self.B = None  # B = 1
        self.C = nn.Parameter(torch.view_as_real(C))  # (H, N/2, 2): real and imaginary parts
        self.D = nn.Parameter(torch.randn(d_model, device=device))
        ssm_parameters = [self.log_dt, self.log_A_real, self.A_imag] + ([self.B] if trainable_B else [])
        for p in ssm_parameters:
            p._no_weight_decay = True
            p._optim = {"weight_decay": 0.0} if ssm_lr is None else {"lr": ssm_lr, "weight_decay": 0.0}
        self.out_proj = (
            nn.Linear(d_model, 2 * d_model, device=device, dtype=dtype) if output == "glu" else None
        )  # then GLU

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dtA, dB, C), each (H, N/2) complex64: log of the discrete decay, ZOH input, output matrix."""
        A = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float())  # (n_ssm, N/2)
        copies = self.d_model // A.shape[0]
        A = A.repeat(copies, 1) if copies > 1 else A  # (H, N/2), channel h uses copy h mod n_ssm
        dtA = A * torch.exp(self.log_dt.float())[:, None]
        dB = torch.expm1(dtA) / A
        if self.B is not None:
            B = torch.view_as_complex(self.B.float())
            dB = dB * (B.repeat(copies, 1) if copies > 1 else B)
        return dtA, dB, torch.view_as_complex(self.C.float())

    def kernel(self, seqlen: int) -> torch.Tensor:
        """The convolution kernel K (H, seqlen) fp32: K[h, l] = 2 Re(sum_n C dB exp(dtA l))."""
        dtA, dB, C = self.discretize()
        return vandermonde_kernel(dtA, C * dB, seqlen)

    def forward(
        self, hidden_states: torch.Tensor, seq_idx: torch.Tensor | None = None, inference_params=None
    ):
        """hidden_states: (batch, seqlen, d_model). seq_idx: (batch, seqlen) int, documents run separately.
        With ``inference_params`` at seqlen_offset 0 the convolution runs and the final state fills the
        cache; later calls take one token and run the recurrence. Returns (batch, seqlen, d_model)."""
        state = None
        if inference_params is not None:
            state = inference_params.layer_state(self, hidden_states.shape[0], seq_idx)
            if inference_params.seqlen_offset > 0:
                return self.step(hidden_states, state)
        if seq_idx is not None:
            return run_per_document(self.forward, hidden_states, seq_idx)

        u = hidden_states.float()  # the FFT runs in fp32 whatever the compute dtype
        y = fft_convolution(u, self.kernel(u.shape[1]), self.D.float())  # (batch, L, H)
        if state is not None:
            state.copy_(self.final_state(u))
        return self._output(y, hidden_states.dtype)

    def final_state(self, u: torch.Tensor) -> torch.Tensor:
        """The recurrent state after reading u (batch, L, H): x[L-1] = sum_t dA^(L-1-t) dB u[t],
        (batch, H, N/2) complex64."""
        dtA, dB, _ = self.discretize()
        seqlen = u.shape[1]
        age = torch.arange(seqlen - 1, -1, -1, device=u.device)  # L-1-t
        powers = torch.exp(dtA[:, :, None] * age)  # (H, N/2, L)
        return torch.einsum("blh,hnl->bhn", u.to(torch.cfloat), powers) * dB

    def step(self, hidden_states: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The recurrent form for one token. hidden_states: (batch, 1, d_model);
        state: (batch, H, N/2) complex64, updated in place. Returns (batch, 1, d_model)."""
        if hidden_states.shape[1] != 1:
            raise ValueError(
                f"S4D.step takes one token at a time after the prompt, got seqlen={hidden_states.shape[1]}"
            )
        dtA, dB, C = self.discretize()
        u = hidden_states[:, 0].float()  # (batch, H)
        state.copy_(torch.exp(dtA) * state + dB * u[:, :, None])
        y = 2 * (C * state).sum(dim=-1).real + self.D.float() * u
        return self._output(y[:, None, :], hidden_states.dtype)

    def _output(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """GELU, then a GLU projection (or y as it is with ``output="none"``): (batch, L, H) fp32 ->
        (batch, L, H)."""
        if self.out_proj is None:
            return y.to(dtype)
        y = F.gelu(y).to(dtype)
        return F.glu(self.out_proj(y), dim=-1)

    def allocate_inference_cache(self, batch_size: int, max_seqlen: int, dtype=None) -> torch.Tensor:
        """The state (batch, H, N/2) complex64."""
        return torch.zeros(
            batch_size,
            self.d_model,
            self.d_state // 2,
            dtype=torch.cfloat,
            device=self.D.device,
        )
