"""PyTorch reference of the diagonal SSM's convolution kernel (the formula S4D computes)."""

from __future__ import annotations

import torch


def vandermonde_kernel_ref(dtA: torch.Tensor, W: torch.Tensor, seqlen: int) -> torch.Tensor:
    """K[h, l] = 2 Re(sum_n W[h, n] exp(dtA[h, n] l)) for l = 0 .. seqlen - 1.

    dtA: (H, N) complex (N modes of one conjugate half); W: (H, N) or (S, H, N) complex. Returns K
    (H, seqlen) or (S, H, seqlen), the real dtype of W. Materializes the (H, N, seqlen) powers exp(dtA l)
    once for all S: simple, and as much memory traffic as the activations of a layer at LRA's lengths (the
    Triton kernel recomputes them instead)."""
    powers = torch.exp(dtA[:, :, None] * torch.arange(seqlen, device=dtA.device))  # (H, N, L)
    return 2 * torch.einsum("...hn,hnl->...hl", W, powers).real
