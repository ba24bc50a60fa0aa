"""``selective_scan_fn``: the public entry point, dispatching to the Triton kernel or the PyTorch path."""

from __future__ import annotations

import torch

from ..dispatch import triton_runs_on
from .checks import check_scan_args
from .torch_scan import selective_scan_torch

# The Triton kernels keep every state of a channel in registers and unroll over states: past 32
# states they spill and take minutes to compile, so larger states use the PyTorch path.
MAX_TRITON_DSTATE = 32


def scan_runs_triton(u: torch.Tensor, d_state: int) -> bool:
    """Whether the scan of ``u`` with ``d_state`` states runs the Triton kernels (else the PyTorch path).

    The one dispatch rule: ``selective_scan_fn`` and the model's memory-lean Mamba block both ask it."""
    return triton_runs_on(u) and d_state <= MAX_TRITON_DSTATE


def selective_scan_fn(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
):
    """Selective scan (Mamba's S6 recurrence), fused, differentiable in every tensor input.

    Per batch b, channel d, state n, step t, in fp32::

        dt   = softplus(delta + delta_bias) if delta_softplus else delta + delta_bias
        h[t] = exp(dt[t] A[d, n]) h[t-1] + dt[t] B[n, t] u[t]     (h[-1] = initial_state or 0,
                                                                  reset to 0 where seq_idx changes)
        out  = (sum_n C[n, t] h[t] + D[d] u[t]) * silu(z[t])

    Args:
        u, delta, z: (batch, dim, seqlen), fp32/fp16/bf16 (all the same); any strides.
        A: (dim, dstate) fp32; dstate up to 32 runs the Triton kernel (16 is its fast path), larger
            states the PyTorch path.  B, C: (batch, dstate, seqlen) or (batch, groups, dstate, seqlen).
        D, delta_bias: (dim,) fp32.  initial_state: (batch, dim, dstate) fp32.
        seq_idx: (batch, seqlen) int32, non-decreasing per row (packed documents).
    Returns:
        out (batch, dim, seqlen) in u's dtype, or (out, last_state (batch, dim, dstate) fp32).
    """
    check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state, seq_idx)
    if scan_runs_triton(u, A.shape[1]):
        from .triton_scan import selective_scan_triton

        out, last_state = selective_scan_triton(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx
        )
    else:
        out, last_state = selective_scan_torch(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx
        )
    return (out, last_state) if return_last_state else out
