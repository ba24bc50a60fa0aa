"""Triton backward kernel of the causal depthwise convolution.

With g = dy * silu'(pre) (just dy without activation), pre recomputed from x (never stored):

    dx[u]      = sum_s w[WIDTH - 1 - s] * g[u + s]        over taps s whose output u + s is in u's document
    dw[k]      = sum_(b, t) g[t] * input[t - (WIDTH - 1) + k]      (dropped taps count 0)
    dbias      = sum_(b, t) g[t]
    dinitial   = dx at the positions -(WIDTH - 1) .. -1

Grid: (cdiv(dim, BLOCK_D), n_chunks (+ 1 for the initial states' gradient), batch). A program walks
its chunk of n_sub tiles of BLOCK_L steps, writes dx per tile and one fp32 partial sum of dw and dbias
per chunk (reduced afterwards: deterministic, no atomics). The extra program (i_c == n_chunks) runs
the same tile code at positions -(WIDTH - 1) .. BLOCK_L - WIDTH and writes only the positions below 0.
"""

import triton
import triton.language as tl

from .triton_common import load_docs, load_tap, load_tap_inputs, preactivation


@triton.jit
def conv_bwd_kernel(
    x_ptr, w_ptr, bias_ptr, seq_ptr, h_ptr, dy_ptr, dx_ptr, dh_ptr, dw_part_ptr, dbias_part_ptr,
    stride_xb, stride_xd, stride_xl,
    stride_wd, stride_wk,
    stride_seqb, stride_seql,
    stride_hb, stride_hd, stride_hk,
    stride_dyb, stride_dyd, stride_dyl,
    stride_dxb, stride_dxd, stride_dxl,
    stride_dhb, stride_dhd, stride_dhk,
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
    dx_ptrs = dx_ptr + i_b * stride_dxb + o_d[None, :] * stride_dxd
    dh_ptrs = dh_ptr + i_b * stride_dhb + o_d[None, :] * stride_dhd
    w_ptrs = w_ptr + o_d * stride_wd
    seq_ptrs = seq_ptr + i_b * stride_seqb
    bias = (
        tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32)
        if HAS_BIAS
        else tl.zeros((BLOCK_D,), dtype=tl.float32)
    )

    # This program's own steps [t_start, t_stop): a chunk, or none for the initial-state program.
    is_history = i_c == n_chunks
    chunk_len = n_sub * BLOCK_L
    t_start = tl.where(is_history, 1 - WIDTH, i_c * chunk_len)
    t_stop = tl.where(is_history, 0, tl.minimum(i_c * chunk_len + chunk_len, L))
    n_tiles = tl.where(is_history, 1, n_sub)

    dbias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw0 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw1 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw2 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dw3 = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i in range(n_tiles):
        o_t = t_start + i * BLOCK_L + tl.arange(0, BLOCK_L)
        own = (o_t >= 0) & (o_t < t_stop)
        doc = load_docs(seq_ptrs, o_t, L, stride_seql) if HAS_SEQ else o_t
        dx = tl.zeros((BLOCK_L, BLOCK_D), dtype=tl.float32)
        for s in tl.static_range(WIDTH):
            p = o_t + s  # the output that reads input o_t through tap WIDTH - 1 - s
            m_p = (p >= 0) & (p < L)
            g = tl.load(dy_ptrs + p[:, None] * stride_dyl, mask=m_p[:, None] & m_d[None, :], other=0.0)
            g = g.to(tl.float32)
            if SILU:
                pre = preactivation(
                    x_ptrs, h_ptrs, w_ptrs, seq_ptrs, p, bias, L, stride_xl, stride_hk, stride_wk,
                    stride_seql, m_d, WIDTH, HAS_SEQ, HAS_INIT, BLOCK_L, BLOCK_D,
                )  # fmt: skip
                sig = 1.0 / (1.0 + tl.exp(-pre))
                g = g * sig * (1.0 + pre * (1.0 - sig))
            if s == 0:  # g at this tile's own steps: the weight and bias gradients
                g_own = tl.where(own[:, None], g, 0.0)
                dbias += tl.sum(g_own, axis=0)
                for shift in tl.static_range(WIDTH):
                    v = load_tap_inputs(
                        x_ptrs, h_ptrs, seq_ptrs, o_t, doc, shift, L, stride_xl, stride_hk, stride_seql,
                        m_d, WIDTH, HAS_SEQ, HAS_INIT,
                    )  # fmt: skip
                    part = tl.sum(g_own * v, axis=0)
                    if shift == WIDTH - 1:
                        dw0 += part
                    elif shift == WIDTH - 2:
                        dw1 += part
                    elif shift == WIDTH - 3:
                        dw2 += part
                    else:
                        dw3 += part
            contrib = g * load_tap(w_ptrs, stride_wk, WIDTH - 1 - s, m_d)[None, :]
            if HAS_SEQ and s > 0:
                contrib = tl.where((load_docs(seq_ptrs, p, L, stride_seql) == doc)[:, None], contrib, 0.0)
            dx += contrib
        tl.store(
            dx_ptrs + o_t[:, None] * stride_dxl,
            dx.to(dx_ptr.dtype.element_ty),
            mask=own[:, None] & m_d[None, :],
        )
        if HAS_INIT:
            k = o_t + (WIDTH - 1)
            m_h = (o_t < 0) & (k >= 0)
            tl.store(dh_ptrs + k[:, None] * stride_dhk, dx, mask=m_h[:, None] & m_d[None, :])

    if i_c < n_chunks:
        row = i_b * n_chunks + i_c
        tl.store(dbias_part_ptr + row * dim + o_d, dbias, mask=m_d)
        dw_row = dw_part_ptr + row * WIDTH * dim + o_d
        tl.store(dw_row, dw0, mask=m_d)
        tl.store(dw_row + dim, dw1, mask=m_d)
        if WIDTH > 2:
            tl.store(dw_row + 2 * dim, dw2, mask=m_d)
        if WIDTH > 3:
            tl.store(dw_row + 3 * dim, dw3, mask=m_d)
