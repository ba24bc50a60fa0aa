"""Triton forward kernel of the selective scan.

Grid: (groups * cdiv(dim_per_group, BLOCK_D), batch, n_segments). A program walks its segment of
time sequentially with the fp32 state of its BLOCK_D channels in registers (see triton_common).
The same kernel serves three roles, chosen by constexpr flags:

- the whole forward, when one segment spans the sequence (enough batch x channel parallelism);
- pass 1 of the chunked forward (WRITE_OUT=False, SAVE_END=True, no initial state): each segment's
  local end state and the sum of its dt, which `combine_states_kernel` joins into the state
  before every segment;
- pass 3 of the chunked forward: every segment again, from its true start state, writing y.

It saves the state before every chunk of chunk_len steps (the backward restarts from these).
State arguments carry strides (batch, segment, state, channel); ckpt is (batch, n_chunks, dstate,
dim) contiguous and dtsum (batch, n_seg, dim).
"""

import triton
import triton.language as tl

from .triton_common import (
    LOG2E,
    channel_block,
    dt_from_raw,
    keep_state,
    load_state,
    load_step_inputs,
    store_state,
    zero_state,
)


@triton.jit
def scan_fwd_kernel(
    u_ptr, delta_ptr, z_ptr, out_ptr,
    A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, seq_ptr,
    h0_ptr, ckpt_ptr, hend_ptr, dtsum_ptr, reset_ptr,
    stride_ub, stride_ud, stride_ul,
    stride_deltab, stride_deltad, stride_deltal,
    stride_zb, stride_zd, stride_zl,
    stride_ob, stride_od, stride_ol,
    stride_Ad, stride_An,
    stride_Bb, stride_Bg, stride_Bn, stride_Bl,
    stride_Cb, stride_Cg, stride_Cn, stride_Cl,
    stride_seqb, stride_seql,
    stride_h0b, stride_h0s, stride_h0n, stride_h0d,
    stride_heb, stride_hes, stride_hen, stride_hed,
    L, dim, dim_per_group, n_seg, seg_len, n_chunks, chunk_len,
    HAS_Z: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, DELTA_SOFTPLUS: tl.constexpr,
    HAS_SEQ_IDX: tl.constexpr, HAS_H0: tl.constexpr, WRITE_OUT: tl.constexpr,
    SAVE_CKPT: tl.constexpr, SAVE_END: tl.constexpr,
    BLOCK_D: tl.constexpr, DSTATE: tl.constexpr, VEC_BC: tl.constexpr,
):  # fmt: skip
    i_dg, i_b, i_s, i_g, o_d, m_d = channel_block(dim_per_group, BLOCK_D)

    A = load_state(A_ptr, stride_An, o_d * stride_Ad, m_d, DSTATE)
    bias = tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    Dskip = tl.load(Dskip_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_D else 0.0

    u_ptrs = u_ptr + i_b * stride_ub + o_d * stride_ud
    delta_ptrs = delta_ptr + i_b * stride_deltab + o_d * stride_deltad
    z_ptrs = z_ptr + i_b * stride_zb + o_d * stride_zd
    out_ptrs = out_ptr + i_b * stride_ob + o_d * stride_od
    B_ptrs = B_ptr + i_b * stride_Bb + i_g * stride_Bg
    C_ptrs = C_ptr + i_b * stride_Cb + i_g * stride_Cg
    seq_ptrs = seq_ptr + i_b * stride_seqb

    if HAS_H0:
        h = load_state(
            h0_ptr + i_b * stride_h0b + i_s * stride_h0s, stride_h0n, o_d * stride_h0d, m_d, DSTATE
        )
    else:
        h = zero_state(BLOCK_D, DSTATE)

    t0 = i_s * seg_len
    t_end = tl.minimum(t0 + seg_len, L)
    seq_prev = 0
    if HAS_SEQ_IDX:
        seq_prev = tl.load(seq_ptrs + tl.maximum(t0 - 1, 0) * stride_seql)
    dt_sum = tl.zeros([BLOCK_D], dtype=tl.float32)
    reset = 0.0
    args = (u_ptrs, stride_ul, delta_ptrs, stride_deltal, z_ptrs, stride_zl)
    args = args + (B_ptrs, stride_Bn, stride_Bl, C_ptrs, stride_Cn, stride_Cl, m_d)
    nxt = load_step_inputs(t0, t_end, *args, HAS_Z and WRITE_OUT, WRITE_OUT, DSTATE, VEC_BC)
    for t in range(t0, t_end):
        if SAVE_CKPT:
            if t % chunk_len == 0:
                ckpt = ckpt_ptr + (i_b * n_chunks + t // chunk_len) * DSTATE * dim
                store_state(ckpt, h, dim, o_d, m_d, DSTATE)
        u, delta, zt, Bs, Cs = nxt
        nxt = load_step_inputs(t + 1, t_end, *args, HAS_Z and WRITE_OUT, WRITE_OUT, DSTATE, VEC_BC)
        u = u.to(tl.float32)
        dt, _ = dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS)
        keep, seq_prev = keep_state(t, L, seq_ptrs, stride_seql, seq_prev, HAS_SEQ_IDX)
        if HAS_SEQ_IDX:
            reset = tl.maximum(reset, 1.0 - keep)
        dtu = dt * u
        dt2 = dt * LOG2E  # exp(dt A) = exp2(dt2 A)
        dt_sum += dt
        y = Dskip * u
        h_new = ()
        for n in tl.static_range(DSTATE):
            dA_n = tl.exp2(dt2 * A[n])
            if HAS_SEQ_IDX:
                dA_n = dA_n * keep
            h_n = dA_n * h[n] + dtu * Bs[n].to(tl.float32)
            if WRITE_OUT:
                y += h_n * Cs[n].to(tl.float32)
            h_new = h_new + (h_n,)
        h = h_new
        if WRITE_OUT:
            if HAS_Z:
                zt = zt.to(tl.float32)
                y = y * zt * tl.sigmoid(zt)
            tl.store(out_ptrs + t * stride_ol, y.to(out_ptr.dtype.element_ty), mask=m_d)

    if SAVE_END:
        hend = hend_ptr + i_b * stride_heb + i_s * stride_hes
        store_state(hend, h, stride_hen, o_d * stride_hed, m_d, DSTATE)
        tl.store(dtsum_ptr + (i_b * n_seg + i_s) * dim + o_d, dt_sum, mask=m_d)
        if HAS_SEQ_IDX:
            if i_dg == 0:
                tl.store(reset_ptr + i_b * n_seg + i_s, reset)
