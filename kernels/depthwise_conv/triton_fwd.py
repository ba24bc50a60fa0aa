"""Triton forward kernel of the causal depthwise convolution.

Grid: (cdiv(dim, BLOCK_D), cdiv(seqlen, BLOCK_L), batch). A program reads its (BLOCK_L, BLOCK_D) tile
of x at WIDTH shifts (the first from DRAM, the others mostly from cache), sums the taps in fp32 and
writes the tile of y once. Any strides: Triton specialises a stride of 1, so channel-last x gets
loads along channels and seqlen-contiguous x loads along time.
"""

import triton
import triton.language as tl

from .triton_common import preactivation


@triton.jit
def conv_fwd_kernel(
    x_ptr, w_ptr, bias_ptr, seq_ptr, h_ptr, y_ptr,
    stride_xb, stride_xd, stride_xl,
    stride_wd, stride_wk,
    stride_seqb, stride_seql,
    stride_hb, stride_hd, stride_hk,
    stride_yb, stride_yd, stride_yl,
    L, dim,
    WIDTH: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SEQ: tl.constexpr, HAS_INIT: tl.constexpr,
    SILU: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    i_d = tl.program_id(0)
    i_t = tl.program_id(1)
    i_b = tl.program_id(2).to(tl.int64)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_d < dim
    o_t = i_t * BLOCK_L + tl.arange(0, BLOCK_L)

    x_ptrs = x_ptr + i_b * stride_xb + o_d[None, :] * stride_xd
    h_ptrs = h_ptr + i_b * stride_hb + o_d[None, :] * stride_hd
    w_ptrs = w_ptr + o_d * stride_wd
    seq_ptrs = seq_ptr + i_b * stride_seqb
    bias = (
        tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32)
        if HAS_BIAS
        else tl.zeros((BLOCK_D,), dtype=tl.float32)
    )

    y = preactivation(
        x_ptrs, h_ptrs, w_ptrs, seq_ptrs, o_t, bias, L, stride_xl, stride_hk, stride_wk, stride_seql, m_d,
        WIDTH, HAS_SEQ, HAS_INIT, BLOCK_L, BLOCK_D,
    )  # fmt: skip
    if SILU:
        y = y / (1.0 + tl.exp(-y))
    y_ptrs = y_ptr + i_b * stride_yb + o_d[None, :] * stride_yd + o_t[:, None] * stride_yl
    tl.store(y_ptrs, y.to(y_ptr.dtype.element_ty), mask=(o_t < L)[:, None] & m_d[None, :])
