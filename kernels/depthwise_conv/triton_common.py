"""Loads shared by the forward and backward Triton kernels of the causal depthwise convolution.

A program owns a tile of BLOCK_L steps x BLOCK_D channels of one batch row. The width - 1 steps of
history a tile needs are read again by shifted loads of the same tile (L1/L2 hits), so every input
comes from DRAM about once. Positions are signed: -(width - 1) .. -1 are the initial states.
"""

import triton
import triton.language as tl


@triton.jit
def load_inputs(
    x_ptrs, h_ptrs, pos, L, stride_xl, stride_hk, m_d, WIDTH: tl.constexpr, HAS_INIT: tl.constexpr
):
    """(BLOCK_L, BLOCK_D) fp32 inputs at positions pos (BLOCK_L,): x where 0 <= pos < L, the initial
    states where -(WIDTH - 1) <= pos < 0 (if HAS_INIT), else 0.

    x_ptrs, h_ptrs: (1, BLOCK_D) pointers to step 0 of x and of the initial states; m_d (BLOCK_D,).
    """
    in_x = (pos >= 0) & (pos < L)
    v = tl.load(x_ptrs + pos[:, None] * stride_xl, mask=in_x[:, None] & m_d[None, :], other=0.0)
    v = v.to(tl.float32)
    if HAS_INIT:
        k = pos + (WIDTH - 1)
        in_h = (pos < 0) & (k >= 0)
        h = tl.load(h_ptrs + k[:, None] * stride_hk, mask=in_h[:, None] & m_d[None, :], other=0.0)
        v += h.to(tl.float32)
    return v


@triton.jit
def load_docs(seq_ptrs, pos, L, stride_seql):
    """(BLOCK_L,) document ids at positions pos; positions before 0 count as the first document
    (the initial states continue it), positions past the end as the last one."""
    return tl.load(seq_ptrs + tl.minimum(tl.maximum(pos, 0), L - 1) * stride_seql)


@triton.jit
def load_tap(w_ptrs, stride_wk, k, m_d):
    """(BLOCK_D,) fp32 weights of tap k (the tap that reads input t - (WIDTH - 1) + k)."""
    return tl.load(w_ptrs + k * stride_wk, mask=m_d, other=0.0).to(tl.float32)


@triton.jit
def load_tap_inputs(
    x_ptrs, h_ptrs, seq_ptrs, pos, doc, shift, L, stride_xl, stride_hk, stride_seql, m_d,
    WIDTH: tl.constexpr, HAS_SEQ: tl.constexpr, HAS_INIT: tl.constexpr,
):  # fmt: skip
    """(BLOCK_L, BLOCK_D) fp32 inputs at pos - shift as the outputs at pos see them: 0 where they lie in
    an earlier document than doc (BLOCK_L,), the document ids at pos (ignored without HAS_SEQ)."""
    v = load_inputs(x_ptrs, h_ptrs, pos - shift, L, stride_xl, stride_hk, m_d, WIDTH, HAS_INIT)
    if HAS_SEQ and shift > 0:
        v = tl.where((load_docs(seq_ptrs, pos - shift, L, stride_seql) == doc)[:, None], v, 0.0)
    return v


@triton.jit
def preactivation(
    x_ptrs, h_ptrs, w_ptrs, seq_ptrs, pos, bias, L, stride_xl, stride_hk, stride_wk, stride_seql, m_d,
    WIDTH: tl.constexpr, HAS_SEQ: tl.constexpr, HAS_INIT: tl.constexpr, BLOCK_L: tl.constexpr,
    BLOCK_D: tl.constexpr,
):  # fmt: skip
    """(BLOCK_L, BLOCK_D) fp32 bias + sum_k w[k] * input[pos - (WIDTH - 1) + k], taps that would reach
    into an earlier document dropped. bias: (BLOCK_D,) fp32 (zeros without a bias)."""
    acc = tl.zeros((BLOCK_L, BLOCK_D), dtype=tl.float32) + bias[None, :]
    doc = load_docs(seq_ptrs, pos, L, stride_seql) if HAS_SEQ else pos
    for shift in tl.static_range(WIDTH):
        v = load_tap_inputs(
            x_ptrs, h_ptrs, seq_ptrs, pos, doc, shift, L, stride_xl, stride_hk, stride_seql, m_d,
            WIDTH, HAS_SEQ, HAS_INIT,
        )  # fmt: skip
        acc += v * load_tap(w_ptrs, stride_wk, WIDTH - 1 - shift, m_d)[None, :]
    return acc
