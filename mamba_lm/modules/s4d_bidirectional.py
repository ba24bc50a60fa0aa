"""S4's bidirectional layer for S4D: one SSM read in both directions through a two-sided kernel.

As S4's FFTConv with ``bidirectional: true`` (state-spaces/s4, src/models/sequence/kernels/fftconv.py):
dt, A, B, D and the output projection are shared; a second C (``C_backward``) gives the backward kernel
K_b, and with the forward kernel K_f (from C):

    y[t] = sum_{s <= t} K_f[t - s] u[s] + sum_{s > t} K_b[s - t - 1] u[s] + D u[t]

computed as one circular FFT convolution with the kernel [K_f, zeros, reversed K_b]; then GELU and the GLU
output projection, as ``S4D``. Used by the classifier (``bidirectional_merge: kernel``); positions at
or past a row's length are zeroed first, so padding never reaches a real position from either side.
"""

from __future__ import annotations

import torch
from torch import nn

from mamba_lm.kernels import vandermonde_kernel

from .s4d import S4D, fft_convolution, fft_length


class BidirectionalS4D(S4D):
    """S4D read forward and backward by one layer. Input and output (batch, seqlen, d_model)."""

    def __init__(self, d_model: int, d_state: int = 64, device=None, dtype=None, **options):
        """The options of ``S4D``; a second output matrix ``C_backward`` (H, N/2, 2) reads backwards."""
        super().__init__(d_model, d_state=d_state, device=device, dtype=dtype, **options)
        C_backward = torch.randn(d_model, d_state // 2, dtype=torch.cfloat, device=device)
        self.C_backward = nn.Parameter(torch.view_as_real(C_backward))

    def kernels(self, seqlen: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(K_f, K_b), each (H, seqlen) fp32: the forward and backward convolution kernels."""
        dtA, dB, C = self.discretize()
        C_backward = torch.view_as_complex(self.C_backward.float())
        forward, backward = vandermonde_kernel(dtA, torch.stack((C * dB, C_backward * dB)), seqlen)
        return forward, backward  # one launch (the reference: one set of powers) for both

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (batch, seqlen, d_model); lengths: (batch,) int real lengths (None = all real).
        Returns (batch, seqlen, d_model); positions past a row's length hold no meaningful output."""
        u = hidden_states.float()
        batch, seqlen, _ = u.shape
        if lengths is not None:
            real = torch.arange(seqlen, device=u.device) < lengths.to(u.device)[:, None]  # (batch, L)
            u = u * real[:, :, None]
        forward, backward = self.kernels(seqlen)  # (H, L) each
        gap = forward.new_zeros(forward.shape[0], fft_length(seqlen) - 2 * seqlen)
        kernel = torch.cat((forward, gap, backward.flip(-1)), dim=-1)  # (H, n): lags 0..L-1, zeros, -L..-1
        y = fft_convolution(u, kernel, self.D.float())
        return self._output(y, hidden_states.dtype)
