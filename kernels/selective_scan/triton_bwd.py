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

from .triton_common import LOG2E, load_dt, load_row


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
def adjoint_local_kernel(
    delta_ptr, z_ptr, dout_ptr, A_ptr, C_ptr, bias_ptr, seq_ptr, q_ptr,
    stride_deltab, stride_deltad, stride_deltal,
    stride_zb, stride_zd, stride_zl,
    stride_dob, stride_dod, stride_dol,
    stride_Ad, stride_An,
    stride_Cb, stride_Cg, stride_Cn, stride_Cl,
    stride_seqb, stride_seql,
    L, dim, dstate, dim_per_group, n_seg, seg_len,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, DELTA_SOFTPLUS: tl.constexpr,
    HAS_SEQ_IDX: tl.constexpr, BLOCK_D: tl.constexpr, DSTATE: tl.constexpr,
):  # fmt: skip
    """q (batch, n_seg, dim, dstate): adjoint w.r.t. the state before segment s, from segment s alone."""
    i_dg = tl.program_id(0)
    i_b = tl.program_id(1).to(tl.int64)
    i_s = tl.program_id(2)
    blocks_per_group = tl.cdiv(dim_per_group, BLOCK_D)
    i_g = i_dg // blocks_per_group
    o_in_group = (i_dg % blocks_per_group) * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_in_group < dim_per_group
    o_d = i_g * dim_per_group + o_in_group
    o_n = tl.arange(0, DSTATE)
    m_n = o_n < dstate
    m_dn = m_d[:, None] & m_n[None, :]
    A2 = tl.load(A_ptr + o_d[:, None] * stride_Ad + o_n[None, :] * stride_An, mask=m_dn, other=0.0)
    A2 = A2.to(tl.float32) * LOG2E
    bias = tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    delta_ptrs = delta_ptr + i_b * stride_deltab + o_d * stride_deltad
    z_ptrs = z_ptr + i_b * stride_zb + o_d * stride_zd
    dout_ptrs = dout_ptr + i_b * stride_dob + o_d * stride_dod
    C_ptrs = C_ptr + i_b * stride_Cb + i_g * stride_Cg + o_n * stride_Cn
    seq_ptrs = seq_ptr + i_b * stride_seqb

    g = tl.zeros([BLOCK_D, DSTATE], dtype=tl.float32)
    t0 = i_s * seg_len
    t_end = tl.minimum(t0 + seg_len, L)
    for k in range(t_end - t0):
        t = t_end - 1 - k
        dt, _ = load_dt(t, L, delta_ptrs, stride_deltal, bias, m_d, DELTA_SOFTPLUS)
        dy, _, _ = load_dy(t, L, dout_ptrs, stride_dol, z_ptrs, stride_zl, m_d, HAS_Z)
        C_t = tl.load(C_ptrs + t * stride_Cl, mask=m_n, other=0.0).to(tl.float32)
        g += dy[:, None] * C_t[None, :]
        g = g * tl.exp2(dt[:, None] * A2) * keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX)
    tl.store(q_ptr + (i_b * n_seg + i_s) * dim * dstate + o_d[:, None] * dstate + o_n[None, :], g, mask=m_dn)


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
    L, dim, dstate, dim_per_group, n_dblocks, n_seg, seg_len, n_chunks, chunk_len,
    HAS_Z: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, DELTA_SOFTPLUS: tl.constexpr,
    HAS_SEQ_IDX: tl.constexpr, HAS_GEND: tl.constexpr,
    BLOCK_D: tl.constexpr, DSTATE: tl.constexpr, SUB: tl.constexpr,
):  # fmt: skip
    """Gradients of one segment; see the module docstring.

    ckpt: (batch, n_chunks, dim, dstate) state before each chunk; gend: (batch, n_seg, dim, dstate)
    adjoint after each segment; du, ddelta, dz: (batch, dim, seqlen) with strides stride_g*;
    dB, dC partials: (batch, n_dblocks, seqlen, dstate); dA partial: (batch, n_seg, dim, dstate);
    dD, dbias partials: (batch, n_seg, dim); dh0: (batch, n_seg, dim, dstate) adjoint before the segment.
    """
    i_dg = tl.program_id(0)
    i_b = tl.program_id(1).to(tl.int64)
    i_s = tl.program_id(2)
    blocks_per_group = tl.cdiv(dim_per_group, BLOCK_D)
    i_g = i_dg // blocks_per_group
    o_in_group = (i_dg % blocks_per_group) * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_in_group < dim_per_group
    o_d = i_g * dim_per_group + o_in_group
    o_n = tl.arange(0, DSTATE)
    m_n = o_n < dstate
    m_dn = m_d[:, None] & m_n[None, :]

    A = tl.load(A_ptr + o_d[:, None] * stride_Ad + o_n[None, :] * stride_An, mask=m_dn, other=0.0)
    A = A.to(tl.float32)
    A2 = A * LOG2E
    bias = tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    Dskip = tl.load(Dskip_ptr + o_d, mask=m_d, other=0.0).to(tl.float32) if HAS_D else 0.0

    u_ptrs = u_ptr + i_b * stride_ub + o_d * stride_ud
    delta_ptrs = delta_ptr + i_b * stride_deltab + o_d * stride_deltad
    z_ptrs = z_ptr + i_b * stride_zb + o_d * stride_zd
    dout_ptrs = dout_ptr + i_b * stride_dob + o_d * stride_dod
    du_ptrs = du_ptr + i_b * stride_gb + o_d * stride_gd
    ddelta_ptrs = ddelta_ptr + i_b * stride_gb + o_d * stride_gd
    dz_ptrs = dz_ptr + i_b * stride_gb + o_d * stride_gd
    B_ptrs = B_ptr + i_b * stride_Bb + i_g * stride_Bg + o_n * stride_Bn
    C_ptrs = C_ptr + i_b * stride_Cb + i_g * stride_Cg + o_n * stride_Cn
    seq_ptrs = seq_ptr + i_b * stride_seqb
    part_ptrs = (i_b * n_dblocks + i_dg) * L * dstate + o_n  # + t * dstate: dB / dC partial rows
    o_state = o_d[:, None] * dstate + o_n[None, :]
    i_prog = (i_b * n_seg + i_s) * n_dblocks + i_dg
    scratch = scratch_ptr + i_prog * (chunk_len // SUB) * BLOCK_D * DSTATE
    o_scratch = tl.arange(0, BLOCK_D)[:, None] * DSTATE + o_n[None, :]

    if HAS_GEND:
        g = tl.load(gend_ptr + (i_b * n_seg + i_s) * dim * dstate + o_state, mask=m_dn, other=0.0)
    else:
        g = tl.zeros([BLOCK_D, DSTATE], dtype=tl.float32)
    dA_acc = tl.zeros([BLOCK_D, DSTATE], dtype=tl.float32)
    dD_acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    dbias_acc = tl.zeros([BLOCK_D], dtype=tl.float32)

    t_seg = i_s * seg_len
    n_chunks_seg = tl.cdiv(tl.minimum(seg_len, L - t_seg), chunk_len)
    for kc in range(n_chunks_seg):
        c0 = t_seg + (n_chunks_seg - 1 - kc) * chunk_len
        c_end = tl.minimum(c0 + chunk_len, L)
        h = tl.load(
            ckpt_ptr + (i_b * n_chunks + c0 // chunk_len) * dim * dstate + o_state, mask=m_dn, other=0.0
        )
        # Phase 1: forward over the chunk.
        for t in range(c0, c_end):
            if (t - c0) % SUB == 0:
                tl.store(scratch + ((t - c0) // SUB) * BLOCK_D * DSTATE + o_scratch, h)
            u = load_row(t, L, u_ptrs, stride_ul, m_d)
            dt, _ = load_dt(t, L, delta_ptrs, stride_deltal, bias, m_d, DELTA_SOFTPLUS)
            B_t = tl.load(B_ptrs + t * stride_Bl, mask=m_n, other=0.0).to(tl.float32)
            C_t = tl.load(C_ptrs + t * stride_Cl, mask=m_n, other=0.0).to(tl.float32)
            dA = tl.exp2(dt[:, None] * A2) * keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX)
            h = dA * h + (dt * u)[:, None] * B_t[None, :]
            dy, dout, z = load_dy(t, L, dout_ptrs, stride_dol, z_ptrs, stride_zl, m_d, HAS_Z)
            if HAS_Z:
                y = tl.sum(h * C_t[None, :], axis=1)
                if HAS_D:
                    y += Dskip * u
                sig = tl.sigmoid(z)
                dz = dout * y * sig * (1.0 + z * (1.0 - sig))
                tl.store(dz_ptrs + t * stride_gl, dz.to(dz_ptr.dtype.element_ty), mask=m_d)
            if HAS_D:
                dD_acc += dy * u
            dC_t = tl.sum(dy[:, None] * h, axis=0)  # masked channels hold h = 0, dy = 0
            tl.store(dC_ptr + part_ptrs + t * dstate, dC_t, mask=m_n)
        # Phase 2: sub-blocks of SUB steps, last to first.
        n_sub = tl.cdiv(c_end - c0, SUB)
        for ks in range(n_sub):
            j = n_sub - 1 - ks
            s0 = c0 + j * SUB
            h_start = tl.load(scratch + j * BLOCK_D * DSTATE + o_scratch)
            h = h_start
            hs = ()
            dAs = ()
            for k in tl.static_range(SUB):
                u = load_row(s0 + k, L, u_ptrs, stride_ul, m_d)
                dt, _ = load_dt(s0 + k, L, delta_ptrs, stride_deltal, bias, m_d, DELTA_SOFTPLUS)
                B_t = tl.load(B_ptrs + (s0 + k) * stride_Bl, mask=m_n & (s0 + k < L), other=0.0)
                dA = tl.exp2(dt[:, None] * A2) * keep_at(s0 + k, L, seq_ptrs, stride_seql, HAS_SEQ_IDX)
                h = dA * h + (dt * u)[:, None] * B_t.to(tl.float32)[None, :]
                hs = hs + (h,)
                dAs = dAs + (dA,)
            for kk in tl.static_range(SUB):
                k = SUB - 1 - kk
                t = s0 + k
                u = load_row(t, L, u_ptrs, stride_ul, m_d)
                dt, dt_raw = load_dt(t, L, delta_ptrs, stride_deltal, bias, m_d, DELTA_SOFTPLUS)
                B_t = tl.load(B_ptrs + t * stride_Bl, mask=m_n & (t < L), other=0.0).to(tl.float32)
                C_t = tl.load(C_ptrs + t * stride_Cl, mask=m_n & (t < L), other=0.0).to(tl.float32)
                dy, _, _ = load_dy(t, L, dout_ptrs, stride_dol, z_ptrs, stride_zl, m_d, HAS_Z)
                g += dy[:, None] * C_t[None, :]
                h_prev = hs[k - 1] if k > 0 else h_start
                d_dtA = g * dAs[k] * h_prev
                gB = tl.sum(g * B_t[None, :], axis=1)
                ddt = tl.sum(d_dtA * A, axis=1) + gB * u
                du = gB * dt
                if HAS_D:
                    du += Dskip * dy
                dA_acc += d_dtA * dt[:, None]
                if DELTA_SOFTPLUS:
                    ddt = ddt * tl.sigmoid(dt_raw)
                m_t = m_d & (t < L)
                ddt = tl.where(m_t, ddt, 0.0)
                dbias_acc += ddt
                tl.store(du_ptrs + t * stride_gl, du.to(du_ptr.dtype.element_ty), mask=m_t)
                tl.store(ddelta_ptrs + t * stride_gl, ddt.to(ddelta_ptr.dtype.element_ty), mask=m_t)
                dB_t = tl.sum(g * (dt * u)[:, None], axis=0)
                tl.store(dB_ptr + part_ptrs + t * dstate, dB_t, mask=m_n & (t < L))
                g = g * dAs[k]

    base = (i_b * n_seg + i_s) * dim
    tl.store(dh0_ptr + base * dstate + o_state, g, mask=m_dn)
    tl.store(dA_ptr + base * dstate + o_state, dA_acc, mask=m_dn)
    if HAS_D:
        tl.store(dD_ptr + base + o_d, dD_acc, mask=m_d)
    if HAS_BIAS:
        tl.store(dbias_ptr + base + o_d, dbias_acc, mask=m_d)
