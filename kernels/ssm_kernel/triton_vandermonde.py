"""Triton kernels of K[h, l] = 2 Re(sum_n W[h, n] z[h, n]^l), z = exp(dtA), and of its gradients.

Complex inputs arrive as real pairs (..., 2). With a = Re dtA, b = Im dtA and
p = exp(a l) (cos(b l) + i sin(b l)) = pr + i pi:

    K[h, l]     = 2 sum_n (Wr pr - Wi pi)
    dL/dWr      = 2 sum_l g pr,              dL/dWi = -2 sum_l g pi          (g = dL/dK[h, l])
    dL/da       = 2 sum_l g l (Wr pr - Wi pi),  dL/db = -2 sum_l g l (Wr pi + Wi pr)

The powers are recomputed in registers from (a, b) and l, so the memory traffic is K (forward) or g
(backward) plus the (H, N) parameters, instead of the (H, N, L) complex powers the reference stores and
its backward reads again. Forward: one program per (channel, block of positions). Backward: one program
per channel, looping over the positions with the four sums kept per mode.
"""

from __future__ import annotations

import triton
import triton.language as tl

TWO_PI_HI = tl.constexpr(6.2831854820251465)  # fp32(2 pi)
TWO_PI_LO = tl.constexpr(-1.7484556e-07)  # 2 pi - TWO_PI_HI


@triton.jit
def _reduced_angle(angle):
    """angle - 2 pi k, k the nearest integer to angle / (2 pi), in [-pi, pi]: two fused multiply-adds with
    2 pi split in two (Cody-Waite), so sin and cos see a small argument however they are computed, and the
    result is as accurate as the fp32 product b l it starts from."""
    k = tl.floor(angle * 0.15915493667125702 + 0.5)  # 1 / (2 pi)
    return tl.fma(-k, TWO_PI_LO, tl.fma(-k, TWO_PI_HI, angle))


@triton.jit
def _load_modes(DTA, W, h, offs_n, mode, stride_dta_h, stride_dta_n, stride_w_h, stride_w_n):
    """(a, b, wr, wi) of channel h: dtA and W's real and imaginary parts, (BLOCK_N,), zero past n_modes."""
    dta = DTA + h * stride_dta_h + offs_n * stride_dta_n
    w = W + h * stride_w_h + offs_n * stride_w_n
    a = tl.load(dta, mask=mode, other=0.0)
    b = tl.load(dta + 1, mask=mode, other=0.0)
    wr = tl.load(w, mask=mode, other=0.0)
    wi = tl.load(w + 1, mask=mode, other=0.0)
    return a, b, wr, wi


@triton.jit
def _powers(a, b, l):  # noqa: E741
    """(pr, pi): the real and imaginary parts of exp((a + i b) l), (BLOCK_N, BLOCK_L) for l (1, BLOCK_L)."""
    magnitude = tl.exp(a[:, None] * l)
    angle = _reduced_angle(b[:, None] * l)
    return magnitude * tl.cos(angle), magnitude * tl.sin(angle)


@triton.jit
def vandermonde_fwd_kernel(
    DTA, W, K,
    seqlen, n_modes,
    stride_dta_h, stride_dta_n, stride_w_h, stride_w_n, stride_k_h,
    BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):  # fmt: skip
    h = tl.program_id(0)
    offs_l = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_n = tl.arange(0, BLOCK_N)
    mode = offs_n < n_modes
    a, b, wr, wi = _load_modes(DTA, W, h, offs_n, mode, stride_dta_h, stride_dta_n, stride_w_h, stride_w_n)
    l = offs_l.to(tl.float32)[None, :]  # noqa: E741  (the position, as in the formulas)
    pr, pi = _powers(a, b, l)  # (BLOCK_N, BLOCK_L)
    k = 2.0 * tl.sum(wr[:, None] * pr - wi[:, None] * pi, axis=0)  # padded modes have W = 0
    tl.store(K + h * stride_k_h + offs_l, k, mask=offs_l < seqlen)


@triton.jit
def vandermonde_bwd_kernel(
    DTA, W, GK, DDTA, DW,
    seqlen, n_modes,
    stride_dta_h, stride_dta_n, stride_w_h, stride_w_n, stride_gk_h,
    BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):  # fmt: skip
    h = tl.program_id(0)
    offs_n = tl.arange(0, BLOCK_N)
    mode = offs_n < n_modes
    a, b, wr, wi = _load_modes(DTA, W, h, offs_n, mode, stride_dta_h, stride_dta_n, stride_w_h, stride_w_n)
    sum_pr = tl.zeros((BLOCK_N,), dtype=tl.float32)  # sum_l g pr
    sum_pi = tl.zeros((BLOCK_N,), dtype=tl.float32)  # sum_l g pi
    sum_lpr = tl.zeros((BLOCK_N,), dtype=tl.float32)  # sum_l g l pr
    sum_lpi = tl.zeros((BLOCK_N,), dtype=tl.float32)  # sum_l g l pi
    for start in range(0, seqlen, BLOCK_L):
        offs_l = start + tl.arange(0, BLOCK_L)
        g = tl.load(GK + h * stride_gk_h + offs_l, mask=offs_l < seqlen, other=0.0)[None, :]
        l = offs_l.to(tl.float32)[None, :]  # noqa: E741
        pr, pi = _powers(a, b, l)
        g_pr = g * pr
        g_pi = g * pi
        sum_pr += tl.sum(g_pr, axis=1)
        sum_pi += tl.sum(g_pi, axis=1)
        sum_lpr += tl.sum(g_pr * l, axis=1)
        sum_lpi += tl.sum(g_pi * l, axis=1)
    out_dta = DDTA + h * stride_dta_h + offs_n * stride_dta_n
    out_w = DW + h * stride_w_h + offs_n * stride_w_n
    tl.store(out_dta, 2.0 * (wr * sum_lpr - wi * sum_lpi), mask=mode)
    tl.store(out_dta + 1, -2.0 * (wr * sum_lpi + wi * sum_lpr), mask=mode)
    tl.store(out_w, 2.0 * sum_pr, mask=mode)
    tl.store(out_w + 1, -2.0 * sum_pi, mask=mode)
