"""Triton backward kernels of the selective scan.

Adjoint: g[t] = dLoss/dh[t] = C[t] dy[t] + keep[t+1] exp(dt[t+1] A) g[t+1]. With it, per step
    d(dt A)[t] = g[t] * exp(dt[t] A) * h[t-1]          (the decay's share)
    ddt[t]     = sum_n d(dt A)[t] A + u[t] sum_n g[t] B[t]
    du[t]      = dt[t] sum_n g[t] B[t] + D dy[t]
    dB[t]      = sum_d g[t] dt[t] u[t],   dC[t] = sum_d dy[t] h[t],   dA = sum_t d(dt A)[t] dt[t]

`adjoint_local_kernel` (chunked mode only) walks a segment backwards from a zero adjoint, giving
the adjoint it sends to the segment before it; `combine_states_kernel` (REVERSE) joins these.

`scan_bwd_kernel` walks its segment's chunks last to first, starting from the adjoint that
arrives from the future. Per chunk, from the checkpointed state before it:
  phase 1, forward over the chunk: recompute h, y; write dz and the dC partial sums; keep the
           state every SUB steps in a small scratch buffer (it stays in cache);
  phase 2, the chunk's sub-blocks last to first: reload the sub-block's start state, recompute
           its SUB states into registers (a static unroll), then walk them backwards.
dB and dC are summed over the program's channels and written as partials per channel block;
dA, dD and d(delta_bias) as partials per segment; the host sums the partials.
"""

import triton
import triton.language as tl

from .triton_common import (
    LOG2E,
    channel_block,
    dt_from_raw,
    load_dt,
    load_row,
    load_state,
    load_state_row,
    load_step_inputs,
    store_state,
    sum_over_channels,
    zero_state,
)


@triton.jit
def load_dy(t, L, dout_ptrs, stride_dol, z_ptrs, stride_zl, m_d, HAS_Z: tl.constexpr):
    """(dy, dout, z) at step t as fp32 rows: dy = dout * silu(z) (or dout without z)."""
    dout = load_row(t, L, dout_ptrs, stride_dol, m_d)
    if HAS_Z:
        z = load_row(t, L, z_ptrs, stride_zl, m_d)
        dy = dout * z * tl.sigmoid(z)
    else:
        z = dout
        dy = dout
    return dy, dout, z


@triton.jit
def keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX: tl.constexpr):
    """1.0, or 0.0 where a new document starts at step t (0 < t < L and seq_idx[t] != seq_idx[t-1])."""
    if HAS_SEQ_IDX:
        valid = (t > 0) & (t < L)
        cur = tl.load(seq_ptrs + t * stride_seql, mask=valid, other=0)
        prev = tl.load(seq_ptrs + (t - 1) * stride_seql, mask=valid, other=0)
        return tl.where(valid & (cur != prev), 0.0, 1.0)
    else:
        return 1.0


@triton.jit
def decays(dt2, A, keep, HAS_SEQ_IDX: tl.constexpr, DSTATE: tl.constexpr):
    """Tuple of exp(dt A[n]) (times keep): dt2 = dt * log2(e)."""
    dA = ()
    for n in tl.static_range(DSTATE):
        dA_n = tl.exp2(dt2 * A[n])
        if HAS_SEQ_IDX:
            dA_n = dA_n * keep
        dA = dA + (dA_n,)
    return dA


@triton.jit
def store_channel_sums(ptr, vals, o_c, mask, BLOCK_D: tl.constexpr, DSTATE: tl.constexpr):
    """ptr[n] = sum over the program's channels of vals[n], for each of the DSTATE vectors."""
    if (DSTATE & (DSTATE - 1)) == 0 and DSTATE <= BLOCK_D:
        total, index = sum_over_channels(vals, o_c, BLOCK_D, DSTATE)
        tl.store(ptr + index, total, mask=mask)
    else:
        for n in tl.static_range(DSTATE):
            tl.store(ptr + n, tl.sum(vals[n], axis=0), mask=mask)


@triton.jit
def adjoint_local_kernel(
    delta_ptr, z_ptr, dout_ptr, A_ptr, C_ptr, bias_ptr, seq_ptr, q_ptr,
    stride_deltab, stride_deltad, stride_deltal,
    stride_zb, stride_zd, stride_zl,
    stride_dob, stride_dod, stride_dol,
    stride_Ad, stride_An,
    stride_Cb, stride_Cg, stride_Cn, stride_Cl,
    stride_seqb, stride_seql,
    L, dim, dim_per_group, n_seg, seg_len,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, DELTA_SOFTPLUS: tl.constexpr,
    HAS_SEQ_IDX: tl.constexpr, BLOCK_D: tl.constexpr, DSTATE: tl.constexpr, VEC_BC: tl.constexpr,
):  # fmt: skip
    """q (batch, n_seg, dstate, dim): adjoint w.r.t. the state before segment s, from segment s alone."""
    i_dg, i_b, i_s, i_g, o_d, m_d = channel_block(dim_per_group, BLOCK_D)
    A = load_state(A_ptr, stride_An, o_d * stride_Ad, m_d, DSTATE)
    bias = tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    delta_ptrs = delta_ptr + i_b * stride_deltab + o_d * stride_deltad
    z_ptrs = z_ptr + i_b * stride_zb + o_d * stride_zd
    dout_ptrs = dout_ptr + i_b * stride_dob + o_d * stride_dod
    C_ptrs = C_ptr + i_b * stride_Cb + i_g * stride_Cg
    seq_ptrs = seq_ptr + i_b * stride_seqb

    g = zero_state(BLOCK_D, DSTATE)
    t0 = i_s * seg_len
    t_end = tl.minimum(t0 + seg_len, L)
    # Rows dout, delta, z and C of step t, loaded while step t + 1 computes (C in the "B" slot).
    args = (dout_ptrs, stride_dol, delta_ptrs, stride_deltal, z_ptrs, stride_zl, C_ptrs, stride_Cn, stride_Cl)
    args = args + (C_ptrs, stride_Cn, stride_Cl, m_d)
    nxt = load_step_inputs(t_end - 1, t_end, *args, HAS_Z, False, DSTATE, VEC_BC)
    for k in range(t_end - t0):
        t = t_end - 1 - k
        dout, delta, z, Cs, _ = nxt
        nxt = load_step_inputs(tl.maximum(t - 1, t0), t_end, *args, HAS_Z, False, DSTATE, VEC_BC)
        dt, _ = dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS)
        dy = dout.to(tl.float32)
        if HAS_Z:
            z = z.to(tl.float32)
            dy = dy * z * tl.sigmoid(z)
        dA = decays(dt * LOG2E, A, keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX), HAS_SEQ_IDX, DSTATE)
        g_new = ()
        for n in tl.static_range(DSTATE):
            g_new = g_new + ((g[n] + dy * Cs[n].to(tl.float32)) * dA[n],)
        g = g_new
    store_state(q_ptr + (i_b * n_seg + i_s) * DSTATE * dim, g, dim, o_d, m_d, DSTATE)


@triton.jit
def scan_bwd_kernel(
    u_ptr, delta_ptr, z_ptr, dout_ptr,
    A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, seq_ptr,
    ckpt_ptr, gend_ptr, scratch_ptr,
    du_ptr, ddelta_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr, dh0_ptr,
    stride_ub, stride_ud, stride_ul,
    stride_deltab, stride_deltad, stride_deltal,
    stride_zb, stride_zd, stride_zl,
    stride_dob, stride_dod, stride_dol,
    stride_gb, stride_gd, stride_gl,
    stride_Ad, stride_An,
    stride_Bb, stride_Bg, stride_Bn, stride_Bl,
    stride_Cb, stride_Cg, stride_Cn, stride_Cl,
    stride_seqb, stride_seql,
    stride_geb, stride_ges, stride_gen, stride_ged,
    L, dim, dim_per_group, n_dblocks, n_seg, seg_len, n_chunks, chunk_len,
    HAS_Z: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, DELTA_SOFTPLUS: tl.constexpr,
    HAS_SEQ_IDX: tl.constexpr, HAS_GEND: tl.constexpr,
    BLOCK_D: tl.constexpr, DSTATE: tl.constexpr, SUB: tl.constexpr, VEC_BC: tl.constexpr,
):  # fmt: skip
    """Gradients of one segment; see the module docstring.

    ckpt: (batch, n_chunks, dstate, dim) state before each chunk; gend: adjoint after each segment,
    strides (batch, segment, state, channel); du, ddelta, dz: (batch, dim, seqlen) with strides
    stride_g*; dB, dC partials: (batch, n_dblocks, seqlen, dstate); dA, dh0 partials: (batch, n_seg,
    dstate, dim); dD, dbias partials: (batch, n_seg, dim).
    """
    i_dg, i_b, i_s, i_g, o_d, m_d = channel_block(dim_per_group, BLOCK_D)

    A = load_state(A_ptr, stride_An, o_d * stride_Ad, m_d, DSTATE)
    bias = tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    Dskip = tl.load(Dskip_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_D else 0.0

    u_ptrs = u_ptr + i_b * stride_ub + o_d * stride_ud
    delta_ptrs = delta_ptr + i_b * stride_deltab + o_d * stride_deltad
    z_ptrs = z_ptr + i_b * stride_zb + o_d * stride_zd
    dout_ptrs = dout_ptr + i_b * stride_dob + o_d * stride_dod
    du_ptrs = du_ptr + i_b * stride_gb + o_d * stride_gd
    ddelta_ptrs = ddelta_ptr + i_b * stride_gb + o_d * stride_gd
    dz_ptrs = dz_ptr + i_b * stride_gb + o_d * stride_gd
    B_ptrs = B_ptr + i_b * stride_Bb + i_g * stride_Bg
    C_ptrs = C_ptr + i_b * stride_Cb + i_g * stride_Cg
    seq_ptrs = seq_ptr + i_b * stride_seqb
    part = (i_b * n_dblocks + i_dg) * L * DSTATE  # + t * DSTATE + n: dB / dC partial sums
    i_prog = (i_b * n_seg + i_s) * n_dblocks + i_dg
    scratch = scratch_ptr + i_prog * (chunk_len // SUB) * DSTATE * BLOCK_D
    o_scratch = tl.arange(0, BLOCK_D)
    o_c = tl.arange(0, BLOCK_D)
    zeros_d = tl.zeros([BLOCK_D], dtype=tl.int32)

    if HAS_GEND:
        ge = gend_ptr + i_b * stride_geb + i_s * stride_ges
        g = load_state(ge, stride_gen, o_d * stride_ged, m_d, DSTATE)
    else:
        g = zero_state(BLOCK_D, DSTATE)
    dA_acc = zero_state(BLOCK_D, DSTATE)
    dD_acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    dbias_acc = tl.zeros([BLOCK_D], dtype=tl.float32)

    args = (u_ptrs, stride_ul, delta_ptrs, stride_deltal, z_ptrs, stride_zl)
    args = args + (B_ptrs, stride_Bn, stride_Bl, C_ptrs, stride_Cn, stride_Cl, m_d)
    t_seg = i_s * seg_len
    n_chunks_seg = tl.cdiv(tl.minimum(seg_len, L - t_seg), chunk_len)
    for kc in range(n_chunks_seg):
        c0 = t_seg + (n_chunks_seg - 1 - kc) * chunk_len
        c_end = tl.minimum(c0 + chunk_len, L)
        h = load_state(ckpt_ptr + (i_b * n_chunks + c0 // chunk_len) * DSTATE * dim, dim, o_d, m_d, DSTATE)
        # Phase 1: forward over the chunk, loading step t + 1 while computing step t.
        nxt = load_step_inputs(c0, c_end, *args, HAS_Z, True, DSTATE, VEC_BC)
        dout_nxt = tl.load(dout_ptrs + c0 * stride_dol, mask=m_d, other=0.0)
        for t in range(c0, c_end):
            if (t - c0) % SUB == 0:
                store_state(
                    scratch + ((t - c0) // SUB) * DSTATE * BLOCK_D, h, BLOCK_D, o_scratch, m_d, DSTATE
                )
            u, delta, z, Bs, Cs = nxt
            dout = dout_nxt.to(tl.float32)
            nxt = load_step_inputs(t + 1, c_end, *args, HAS_Z, True, DSTATE, VEC_BC)
            dout_nxt = tl.load(dout_ptrs + (t + 1) * stride_dol, mask=m_d & (t + 1 < c_end), other=0.0)
            u = u.to(tl.float32)
            dt, _ = dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS)
            dA = decays(dt * LOG2E, A, keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX), HAS_SEQ_IDX, DSTATE)
            if HAS_Z:
                z = z.to(tl.float32)
                sig = tl.sigmoid(z)
                dy = dout * z * sig
            else:
                dy = dout
            dtu = dt * u
            y = Dskip * u
            h_new = ()
            dC_t = ()
            for n in tl.static_range(DSTATE):
                h_n = dA[n] * h[n] + dtu * Bs[n].to(tl.float32)
                if HAS_Z:
                    y += h_n * Cs[n].to(tl.float32)
                h_new = h_new + (h_n,)
                dC_t = dC_t + (dy * h_n,)
            h = h_new
            store_channel_sums(dC_ptr + part + t * DSTATE, dC_t, o_c, True, BLOCK_D, DSTATE)
            if HAS_Z:
                dz = dout * y * sig * (1.0 + z * (1.0 - sig))
                tl.store(dz_ptrs + t * stride_gl, dz.to(dz_ptr.dtype.element_ty), mask=m_d)
            if HAS_D:
                dD_acc += dy * u
        # Phase 2: sub-blocks of SUB steps, last to first.
        n_sub = tl.cdiv(c_end - c0, SUB)
        for ks in range(n_sub):
            j = n_sub - 1 - ks
            s0 = c0 + j * SUB
            h_start = load_state(scratch + j * DSTATE * BLOCK_D, BLOCK_D, o_scratch, m_d, DSTATE)
            h = h_start
            hs = (h_start,)  # hs[k] = the state before step s0 + k
            dAs = ()
            for k in tl.static_range(SUB):
                t = s0 + k
                u = load_row(t, L, u_ptrs, stride_ul, m_d)
                dt, _ = load_dt(t, L, delta_ptrs, stride_deltal, bias, m_d, DELTA_SOFTPLUS)
                dA = decays(
                    dt * LOG2E, A, keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX), HAS_SEQ_IDX, DSTATE
                )
                dtu = dt * u
                Bs = load_state_row(B_ptrs, t, L, stride_Bn, stride_Bl, zeros_d, DSTATE, VEC_BC)
                h_new = ()
                for n in tl.static_range(DSTATE):
                    h_new = h_new + (dA[n] * h[n] + dtu * Bs[n].to(tl.float32),)
                h = h_new
                hs = hs + (h,)
                dAs = dAs + (dA,)
            for k in tl.static_range(SUB - 1, -1, -1):
                t = s0 + k
                m_t = m_d & (t < L)
                u = load_row(t, L, u_ptrs, stride_ul, m_d)
                dt, dt_raw = load_dt(t, L, delta_ptrs, stride_deltal, bias, m_d, DELTA_SOFTPLUS)
                dy, _, _ = load_dy(t, L, dout_ptrs, stride_dol, z_ptrs, stride_zl, m_d, HAS_Z)
                h_prev = hs[k]
                dtu = dt * u
                gB = tl.zeros([BLOCK_D], dtype=tl.float32)
                ddt_A = tl.zeros([BLOCK_D], dtype=tl.float32)
                g_new = ()
                dA_acc_new = ()
                dB_t = ()
                Bs = load_state_row(B_ptrs, t, L, stride_Bn, stride_Bl, zeros_d, DSTATE, VEC_BC)
                Cs = load_state_row(C_ptrs, t, L, stride_Cn, stride_Cl, zeros_d, DSTATE, VEC_BC)
                for n in tl.static_range(DSTATE):
                    B_tn = Bs[n].to(tl.float32)
                    g_n = g[n] + dy * Cs[n].to(tl.float32)
                    d_dtA = g_n * dAs[k][n] * h_prev[n]
                    ddt_A += d_dtA * A[n]
                    gB += g_n * B_tn
                    dA_acc_new = dA_acc_new + (dA_acc[n] + d_dtA * dt,)
                    dB_t = dB_t + (g_n * dtu,)
                    g_new = g_new + (g_n * dAs[k][n],)
                g = g_new
                store_channel_sums(dB_ptr + part + t * DSTATE, dB_t, o_c, t < L, BLOCK_D, DSTATE)
                dA_acc = dA_acc_new
                ddt = ddt_A + gB * u
                du = gB * dt
                if HAS_D:
                    du += Dskip * dy
                if DELTA_SOFTPLUS:
                    ddt = ddt * tl.sigmoid(dt_raw)
                ddt = tl.where(m_t, ddt, 0.0)
                dbias_acc += ddt
                tl.store(du_ptrs + t * stride_gl, du.to(du_ptr.dtype.element_ty), mask=m_t)
                tl.store(ddelta_ptrs + t * stride_gl, ddt.to(ddelta_ptr.dtype.element_ty), mask=m_t)

    base = (i_b * n_seg + i_s) * dim
    store_state(dh0_ptr + base * DSTATE, g, dim, o_d, m_d, DSTATE)
    store_state(dA_ptr + base * DSTATE, dA_acc, dim, o_d, m_d, DSTATE)
    if HAS_D:
        tl.store(dD_ptr + base + o_d, dD_acc, mask=m_d)
    if HAS_BIAS:
        tl.store(dbias_ptr + base + o_d, dbias_acc, mask=m_d)
