"""Launches and autograd glue of the Triton Vandermonde kernels (see triton_vandermonde.py)."""

from __future__ import annotations

import torch
import triton

from .triton_vandermonde import vandermonde_bwd_kernel, vandermonde_fwd_kernel


def _block_l(device: torch.device, block_n: int) -> int:
    """Positions per tile: ~4K (mode, position) pairs on a GPU; small tiles in Triton's interpreter."""
    if device.type != "cuda":
        return 16
    return max(16, 4096 // block_n)


def _launch_args(dta: torch.Tensor, w: torch.Tensor) -> dict[str, int]:
    return {
        "n_modes": dta.shape[1],
        "stride_dta_h": dta.stride(0),
        "stride_dta_n": dta.stride(1),
        "stride_w_h": w.stride(0),
        "stride_w_n": w.stride(1),
    }


class VandermondeKernel(torch.autograd.Function):
    """(dtA, W) as real pairs (H, N, 2) fp32, contiguous -> K (H, seqlen) fp32."""

    @staticmethod
    def forward(ctx, dta: torch.Tensor, w: torch.Tensor, seqlen: int) -> torch.Tensor:
        channels = dta.shape[0]
        block_n = triton.next_power_of_2(dta.shape[1])
        block_l = _block_l(dta.device, block_n)
        k = torch.empty(channels, seqlen, dtype=torch.float32, device=dta.device)
        vandermonde_fwd_kernel[(channels, triton.cdiv(seqlen, block_l))](
            DTA=dta, W=w, K=k, seqlen=seqlen, stride_k_h=k.stride(0),
            BLOCK_N=block_n, BLOCK_L=block_l, **_launch_args(dta, w),
        )  # fmt: skip
        ctx.save_for_backward(dta, w)
        ctx.seqlen = seqlen
        return k

    @staticmethod
    def backward(ctx, grad_k: torch.Tensor):
        dta, w = ctx.saved_tensors
        grad_k = grad_k.float().contiguous()
        block_n = triton.next_power_of_2(dta.shape[1])
        grad_dta, grad_w = torch.empty_like(dta), torch.empty_like(w)
        vandermonde_bwd_kernel[(dta.shape[0],)](
            DTA=dta, W=w, GK=grad_k, DDTA=grad_dta, DW=grad_w, seqlen=ctx.seqlen,
            stride_gk_h=grad_k.stride(0), BLOCK_N=block_n, BLOCK_L=_block_l(dta.device, block_n),
            **_launch_args(dta, w),
        )  # fmt: skip
        return grad_dta, grad_w, None


def vandermonde_kernel_triton(dtA: torch.Tensor, W: torch.Tensor, seqlen: int) -> torch.Tensor:
    """dtA: (H, N) complex64, W: (H, N) or (S, H, N) complex64 -> K (H, seqlen) or (S, H, seqlen) fp32 (see
    ref.py for the formula). S output matrices run as S H channels of one launch."""
    channels, modes = dtA.shape
    stacked = W.reshape(-1, modes)  # (S H, N)
    copies = stacked.shape[0] // channels
    dta = torch.view_as_real(
        dtA.expand(copies, channels, modes).reshape(-1, modes)
    ).contiguous()  # (S H, N, 2)
    w = torch.view_as_real(stacked).contiguous()  # gradients flow back to the complex inputs
    return VandermondeKernel.apply(dta, w, seqlen).view(*W.shape[:-1], seqlen)
