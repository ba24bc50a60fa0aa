"""``vandermonde_kernel``: the diagonal SSM's convolution kernel, dispatching to the Triton kernels
(CUDA, or the CPU under ``TRITON_INTERPRET=1``) or to the PyTorch reference."""

from __future__ import annotations

import torch

from ..dispatch import triton_runs_on
from .ref import vandermonde_kernel_ref


def vandermonde_kernel(dtA: torch.Tensor, W: torch.Tensor, seqlen: int) -> torch.Tensor:
    """K[h, l] = 2 Re(sum_n W[h, n] exp(dtA[h, n] l)), l = 0 .. seqlen - 1: S4D's convolution kernel
    (dtA: the discretized log-decay dt A; W: C dB, the output and input matrices folded together).

    dtA: (H, N) complex; W: (H, N) or (S, H, N) complex, S output matrices over the same powers (the
    two-sided layer's forward and backward C); both differentiable. Returns K (H, seqlen) or
    (S, H, seqlen) real (fp32 from the Triton path). The Triton path computes in fp32 from complex64
    inputs; complex128 inputs take the reference."""
    if (
        dtA.dim() != 2
        or W.dim() not in (2, 3)
        or W.shape[-2:] != dtA.shape
        or not (dtA.is_complex() and W.is_complex())
    ):
        raise ValueError(
            "vandermonde_kernel: dtA and W must be complex (H, N) of one shape (W may stack S of them: "
            f"(S, H, N)), got {tuple(dtA.shape)} {dtA.dtype} and {tuple(W.shape)} {W.dtype}"
        )
    if seqlen < 1:
        raise ValueError(f"vandermonde_kernel: seqlen must be >= 1, got {seqlen}")
    if dtA.dtype == torch.complex64 and W.dtype == torch.complex64 and triton_runs_on(dtA.real):
        from .triton_glue import vandermonde_kernel_triton

        return vandermonde_kernel_triton(dtA, W, seqlen)
    return vandermonde_kernel_ref(dtA, W, seqlen)
