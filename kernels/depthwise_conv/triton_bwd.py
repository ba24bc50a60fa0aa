"""Triton backward kernels of the causal depthwise convolution: two passes, each reading its inputs
about once from DRAM.

With g = dy * silu'(pre) (just dy without activation):

    dw[k]      = sum_(b, t) g[t] * input[t - (WIDTH - 1) + k]      (taps across documents count 0)
    dbias      = sum_(b, t) g[t]
    dx[u]      = sum_s w[WIDTH - 1 - s] * g[u + s]        over taps s whose output u + s is in u's document
    dinitial   = dx at the positions -(WIDTH - 1) .. -1

1. ``conv_bwd_gate_kernel`` recomputes pre once per element (the forward's tile code), forms g, writes
   it (with SiLU; without, g is dy and nothing is written) and sums dw and dbias. Grid: (cdiv(dim,
   BLOCK_D), n_chunks, batch); a program walks a chunk of n_sub tiles and writes one fp32 partial sum
   of dw and dbias per chunk (reduced afterwards: deterministic, no atomics).
2. ``conv_bwd_dx_kernel`` reads g at WIDTH shifts (the first from DRAM, the rest mostly cache hits)
   and writes dx. Grid: (cdiv(dim, BLOCK_D), n_tiles (+ 1 for the initial states' gradient), batch);
   the extra program covers positions -(WIDTH - 1) .. BLOCK_L - WIDTH and writes only those below 0.
"""

import triton
import triton.language as tl

from .triton_common import load_docs, load_tap, load_tap_inputs, preactivation


@triton.jit
def conv_bwd_gate_kernel(
    x_ptr, w_ptr, bias_ptr, seq_ptr, h_ptr, dy_ptr, g_ptr, dw_part_ptr, dbias_part_ptr,
    stride_xb, stride_xd, stride_xl,
    stride_wd, stride_wk,
    stride_seqb, stride_seql,
    stride_hb, stride_hd, stride_hk,
    stride_dyb, stride_dyd, stride_dyl,
    stride_gb, stride_gd, stride_gl,
    L, dim, n_chunks, n_sub,
    WIDTH: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SEQ: tl.constexpr, HAS_INIT: tl.constexpr,
    SILU: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    i_d = tl.program_id(0)
    i_c = tl.program_id(1)
    i_b = tl.program_id(2).to(tl.int64)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_d < dim

    x_ptrs = x_ptr + i_b * stride_xb + o_d[None, :] * stride_xd
    h_ptrs = h_ptr + i_b * stride_hb + o_d[None, :] * stride_hd
    dy_ptrs = dy_ptr + i_b * stride_dyb + o_d[None, :] * stride_dyd
    g_ptrs = g_ptr + i_b * stride_gb + o_d[None, :] * stride_gd
    w_ptrs = w_ptr + o_d * stride_wd
    seq_ptrs = seq_ptr + i_b * stride_seqb
    bias = (
        tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32)
        if HAS_BIAS
        else tl.zeros((BLOCK_D,), dtype=tl.float32)
    )

    dbias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw0 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw1 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw2 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw3 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i in range(n_sub):
        o_t = (i_c * n_sub + i) * BLOCK_L + tl.arange(0, BLOCK_L)
        m = (o_t < L)[:, None] & m_d[None, :]  # chunks tile [0, L) without overlap
        g = tl.load(dy_ptrs + o_t[:, None] * stride_dyl, mask=m, other=0.0).to(tl.float32)
        if SILU:
            pre = preactivation(
                x_ptrs, h_ptrs, w_ptrs, seq_ptrs, o_t, bias, L, stride_xl, stride_hk, stride_wk,
                stride_seql, m_d, WIDTH, HAS_SEQ, HAS_INIT, BLOCK_L, BLOCK_D,
            )  # fmt: skip
            sig = 1.0 / (1.0 + tl.exp(-pre))
            g = g * sig * (1.0 + pre * (1.0 - sig))  # 0 outside the tile's own steps (dy read as 0)
            tl.store(g_ptrs + o_t[:, None] * stride_gl, g.to(g_ptr.dtype.element_ty), mask=m)
        dbias += tl.sum(g, axis=0)
        doc = load_docs(seq_ptrs, o_t, L, stride_seql) if HAS_SEQ else o_t
        for shift in tl.static_range(WIDTH):  # the inputs again (cache hits), one shift at a time
            v = load_tap_inputs(
                x_ptrs, h_ptrs, seq_ptrs, o_t, doc, shift, L, stride_xl, stride_hk, stride_seql,
                m_d, WIDTH, HAS_SEQ, HAS_INIT,
            )  # fmt: skip
            part = tl.sum(g * v, axis=0)
            if shift == WIDTH - 1:
                dw0 += part
            elif shift == WIDTH - 2:
                dw1 += part
            elif shift == WIDTH - 3:
                dw2 += part
            else:
                dw3 += part

    row = i_b * n_chunks + i_c
    tl.store(dbias_part_ptr + row * dim + o_d, dbias, mask=m_d)
    dw_row = dw_part_ptr + row * WIDTH * dim + o_d
    tl.store(dw_row, dw0, mask=m_d)
    tl.store(dw_row + dim, dw1, mask=m_d)
    if WIDTH > 2:
        tl.store(dw_row + 2 * dim, dw2, mask=m_d)
    if WIDTH > 3:
        tl.store(dw_row + 3 * dim, dw3, mask=m_d)


@triton.jit
def conv_bwd_dx_kernel(
    g_ptr, w_ptr, seq_ptr, dx_ptr, dh_ptr,
    stride_gb, stride_gd, stride_gl,
    stride_wd, stride_wk,
    stride_seqb, stride_seql,
    stride_dxb, stride_dxd, stride_dxl,
    stride_dhb, stride_dhd, stride_dhk,
    L, dim, n_tiles,
    WIDTH: tl.constexpr, HAS_SEQ: tl.constexpr, WANT_DINIT: tl.constexpr,
    BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    i_d = tl.program_id(0)
    i_t = tl.program_id(1)
    i_b = tl.program_id(2).to(tl.int64)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_d < dim
    is_history = i_t == n_tiles  # the extra program: the initial states' gradient
    o_t = tl.where(is_history, 1 - WIDTH, i_t * BLOCK_L) + tl.arange(0, BLOCK_L)

    g_ptrs = g_ptr + i_b * stride_gb + o_d[None, :] * stride_gd
    w_ptrs = w_ptr + o_d * stride_wd
    seq_ptrs = seq_ptr + i_b * stride_seqb
    doc = load_docs(seq_ptrs, o_t, L, stride_seql) if HAS_SEQ else o_t
    dx = tl.zeros((BLOCK_L, BLOCK_D), dtype=tl.float32)
    for s in tl.static_range(WIDTH):
        p = o_t + s  # the output that reads input o_t through tap WIDTH - 1 - s
        m_p = (p >= 0) & (p < L)
        g = tl.load(g_ptrs + p[:, None] * stride_gl, mask=m_p[:, None] & m_d[None, :], other=0.0)
        contrib = g.to(tl.float32) * load_tap(w_ptrs, stride_wk, WIDTH - 1 - s, m_d)[None, :]
        if HAS_SEQ and s > 0:
            contrib = tl.where((load_docs(seq_ptrs, p, L, stride_seql) == doc)[:, None], contrib, 0.0)
        dx += contrib
    own = (o_t >= 0) & (o_t < L) & (i_t < n_tiles)
    dx_ptrs = dx_ptr + i_b * stride_dxb + o_d[None, :] * stride_dxd + o_t[:, None] * stride_dxl
    tl.store(dx_ptrs, dx.to(dx_ptr.dtype.element_ty), mask=own[:, None] & m_d[None, :])
    if WANT_DINIT:
        k = o_t + (WIDTH - 1)
        m_h = (o_t < 0) & (k >= 0)
        dh_ptrs = dh_ptr + i_b * stride_dhb + o_d[None, :] * stride_dhd + k[:, None] * stride_dhk
        tl.store(dh_ptrs, dx, mask=m_h[:, None] & m_d[None, :])
