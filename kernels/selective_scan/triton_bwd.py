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
  phase 1, forward over the chunk: recompute h, y; write dz and the dC partial sums; store the
           state before every step into the program's scratch (chunk_len x dstate x BLOCK_D fp32,
           written and read back by the same thread);
  phase 2, backward over the chunk, one step at a time: read h[t-1] back from the scratch,
           recompute the decays exp(dt A) (needed for the adjoint anyway), and accumulate.
The states are thus recomputed once per chunk, and phase 2 can prefetch step t - 1's rows while it
computes step t; the price is DSTATE fp32 stores and loads per channel-step through the cache: L2
while the scratch of all programs in flight fits it, else HBM (50M channel-steps x 128 bytes per
Mamba-130M layer at chunk 64). TILE > 0 shrinks the scratch to one tile: a phase 0 walk over the
chunk keeps each tile's start state, then phases 1 and 2 run per tile, last to first.
dB and dC are summed over the program's channels and written as partials per channel block;
dA, dD and d(delta_bias) as partials per segment; the host sums the partials.
"""

import triton
import triton.language as tl

from .triton_common import (
    LOG2E,
    channel_block,
    decays,
    dt_from_raw,
    keep_at,
    load_state,
    load_step_inputs,
    store_channel_sums,
    store_state,
    zero_state,
)


@triton.jit
def store_lane_sums(ptr, vals, mask, BLOCK_D: tl.constexpr, DSTATE: tl.constexpr, FOLD: tl.constexpr):
    """ptr[n] = sum over the program's channels of vals[n] (DSTATE vectors (BLOCK_D,)), as
    `store_channel_sums`, but the channels that share a thread (c, c + 32, ... in one warp's
    layout) are added in registers first when FOLD, so that the shuffle rounds run over 32 lanes
    only (half the shuffles at 64 channels; a few more registers)."""
    if FOLD and BLOCK_D > 32:
        folded = ()
        for n in tl.static_range(DSTATE):
            folded = folded + (tl.sum(tl.reshape(vals[n], (BLOCK_D // 32, 32)), axis=0),)
        store_channel_sums(ptr, folded, tl.arange(0, 32), mask, 32, DSTATE)
    else:
        store_channel_sums(ptr, vals, tl.arange(0, BLOCK_D), mask, BLOCK_D, DSTATE)


@triton.jit
def save_tile_starts(
    h, c0, c_end, L, starts, A, bias, seq_ptrs, stride_seql, o_c, m_d, args,
    HAS_SEQ_IDX: tl.constexpr, DELTA_SOFTPLUS: tl.constexpr, BLOCK_D: tl.constexpr, DSTATE: tl.constexpr,
    VEC_BC: tl.constexpr, TILE: tl.constexpr,
):  # fmt: skip
    """Walk steps c0 .. c_end - 1 from the state h before them (states only), storing the state
    before every TILE-th step at starts + tile * DSTATE * BLOCK_D."""
    nxt = load_step_inputs(c0, c_end, *args, False, False, DSTATE, VEC_BC)
    for t in range(c0, c_end):
        if (t - c0) % TILE == 0:
            store_state(starts + ((t - c0) // TILE) * DSTATE * BLOCK_D, h, BLOCK_D, o_c, m_d, DSTATE)
        u, delta, _, Bs, _ = nxt
        nxt = load_step_inputs(t + 1, c_end, *args, False, False, DSTATE, VEC_BC)
        dt, _ = dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS)
        dA = decays(dt * LOG2E, A, keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX), HAS_SEQ_IDX, DSTATE)
        dtu = dt * u.to(tl.float32)
        h_new = ()
        for n in tl.static_range(DSTATE):
            h_new = h_new + (dA[n] * h[n] + dtu * Bs[n].to(tl.float32),)
        h = h_new


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
    BLOCK_D: tl.constexpr, DSTATE: tl.constexpr, VEC_BC: tl.constexpr, PREFETCH_STATES: tl.constexpr,
    DEFER_SUMS: tl.constexpr, TILE: tl.constexpr, FOLD_SUMS: tl.constexpr,
):  # fmt: skip
    """Gradients of one segment; see the module docstring.

    ckpt: (batch, n_chunks, dstate, dim) state before each chunk; gend: adjoint after each segment,
    strides (batch, segment, state, channel); du, ddelta, dz: (batch, dim, seqlen) with strides
    stride_g*; dB, dC partials: (batch, n_dblocks, seqlen, dstate); dA, dh0 partials: (batch, n_seg,
    dstate, dim); dD, dbias partials: (batch, n_seg, dim). scratch: per program
    (chunk_len, dstate, BLOCK_D) fp32, or with TILE > 0 (TILE + cdiv(chunk_len, TILE), dstate,
    BLOCK_D): phases 1 and 2 then run per tile of TILE steps, last to first, from tile start states
    that a phase 0 walk over the chunk keeps (a third walk, in exchange for a scratch small enough
    to stay in L2 while the forward still saves one state per chunk_len steps).
    PREFETCH_STATES: phase 2 reads h[t-2] while it computes step t (DSTATE more registers per
    channel; hides the cache latency). DEFER_SUMS: the dB and dC channel sums (a chain of warp
    shuffles) of step t are done during step t +- 1, so that the compiler can interleave them with
    that step's arithmetic (DSTATE more registers per channel). FOLD_SUMS: see `store_lane_sums`."""
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
    tile_len = TILE if TILE > 0 else chunk_len
    n_starts = tl.cdiv(chunk_len, TILE) if TILE > 0 else 0
    scratch = scratch_ptr + i_prog.to(tl.int64) * (tile_len + n_starts) * DSTATE * BLOCK_D
    starts = scratch + tile_len * DSTATE * BLOCK_D  # TILE: each tile's start state
    o_c = tl.arange(0, BLOCK_D)

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
        if TILE > 0:  # Phase 0: walk the chunk once, keeping every tile's start state
            n_tiles = tl.cdiv(c_end - c0, TILE)
            save_tile_starts(
                h, c0, c_end, L, starts, A, bias, seq_ptrs, stride_seql, o_c, m_d, args,
                HAS_SEQ_IDX, DELTA_SOFTPLUS, BLOCK_D, DSTATE, VEC_BC, TILE,
            )  # fmt: skip
        else:
            n_tiles = 1
        for kt in range(n_tiles):  # tiles last to first (one tile of the whole chunk without TILE)
            if TILE > 0:
                s0 = c0 + (n_tiles - 1 - kt) * TILE
                s_end = tl.minimum(s0 + TILE, c_end)
                h = load_state(starts + (n_tiles - 1 - kt) * DSTATE * BLOCK_D, BLOCK_D, o_c, m_d, DSTATE)
            else:
                s0 = c0
                s_end = c_end
            # Phase 1: forward over the tile, loading step t + 1 while computing step t.
            nxt = load_step_inputs(s0, s_end, *args, HAS_Z, True, DSTATE, VEC_BC)
            dout_nxt = tl.load(dout_ptrs + s0 * stride_dol, mask=m_d, other=0.0)
            dC_last = zero_state(BLOCK_D, DSTATE)
            for t in range(s0, s_end):
                store_state(scratch + (t - s0) * DSTATE * BLOCK_D, h, BLOCK_D, o_c, m_d, DSTATE)
                u, delta, z, Bs, Cs = nxt
                dout = dout_nxt.to(tl.float32)
                nxt = load_step_inputs(t + 1, s_end, *args, HAS_Z, True, DSTATE, VEC_BC)
                dout_nxt = tl.load(dout_ptrs + (t + 1) * stride_dol, mask=m_d & (t + 1 < s_end), other=0.0)
                u = u.to(tl.float32)
                dt, _ = dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS)
                dA = decays(
                    dt * LOG2E, A, keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX), HAS_SEQ_IDX, DSTATE
                )
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
                if DEFER_SUMS:  # step t - 1's sums, off this step's dependency chain
                    t_last = tl.maximum(t - 1, s0)
                    store_lane_sums(
                        dC_ptr + part + t_last * DSTATE, dC_last, t > s0, BLOCK_D, DSTATE, FOLD_SUMS
                    )
                    dC_last = dC_t
                else:
                    store_lane_sums(dC_ptr + part + t * DSTATE, dC_t, True, BLOCK_D, DSTATE, FOLD_SUMS)
                if HAS_Z:
                    dz = dout * y * sig * (1.0 + z * (1.0 - sig))
                    tl.store(dz_ptrs + t * stride_gl, dz.to(dz_ptr.dtype.element_ty), mask=m_d)
                if HAS_D:
                    dD_acc += dy * u
            if DEFER_SUMS:
                store_lane_sums(
                    dC_ptr + part + (s_end - 1) * DSTATE, dC_last, True, BLOCK_D, DSTATE, FOLD_SUMS
                )
            # Phase 2: backward over the tile, loading step t - 1 while computing step t.
            nxt = load_step_inputs(s_end - 1, s_end, *args, HAS_Z, True, DSTATE, VEC_BC)
            dout_nxt = tl.load(dout_ptrs + (s_end - 1) * stride_dol, mask=m_d, other=0.0)
            if PREFETCH_STATES:
                h_nxt = load_state(scratch + (s_end - 1 - s0) * DSTATE * BLOCK_D, BLOCK_D, o_c, m_d, DSTATE)
            dB_last = zero_state(BLOCK_D, DSTATE)
            for k in range(s_end - s0):
                t = s_end - 1 - k
                t_prev = tl.maximum(t - 1, s0)
                u, delta, z, Bs, Cs = nxt
                dout = dout_nxt.to(tl.float32)
                nxt = load_step_inputs(t_prev, s_end, *args, HAS_Z, True, DSTATE, VEC_BC)
                dout_nxt = tl.load(dout_ptrs + t_prev * stride_dol, mask=m_d, other=0.0)
                if PREFETCH_STATES:
                    h_prev = h_nxt
                    h_nxt = load_state(scratch + (t_prev - s0) * DSTATE * BLOCK_D, BLOCK_D, o_c, m_d, DSTATE)
                else:
                    h_prev = load_state(scratch + (t - s0) * DSTATE * BLOCK_D, BLOCK_D, o_c, m_d, DSTATE)
                u = u.to(tl.float32)
                dt, dt_raw = dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS)
                dA = decays(
                    dt * LOG2E, A, keep_at(t, L, seq_ptrs, stride_seql, HAS_SEQ_IDX), HAS_SEQ_IDX, DSTATE
                )
                if HAS_Z:
                    z = z.to(tl.float32)
                    dy = dout * z * tl.sigmoid(z)
                else:
                    dy = dout
                dtu = dt * u
                gB = tl.zeros([BLOCK_D], dtype=tl.float32)
                ddt_A = tl.zeros([BLOCK_D], dtype=tl.float32)
                g_new = ()
                dA_acc_new = ()
                dB_t = ()
                for n in tl.static_range(DSTATE):
                    g_n = g[n] + dy * Cs[n].to(tl.float32)
                    g_decayed = g_n * dA[n]  # the adjoint sent to step t - 1
                    d_dtA = g_decayed * h_prev[n]
                    ddt_A += d_dtA * A[n]
                    gB += g_n * Bs[n].to(tl.float32)
                    dA_acc_new = dA_acc_new + (dA_acc[n] + d_dtA * dt,)
                    dB_t = dB_t + (g_n * dtu,)
                    g_new = g_new + (g_decayed,)
                g = g_new
                dA_acc = dA_acc_new
                if DEFER_SUMS:  # step t + 1's sums, off this step's dependency chain
                    t_last = tl.minimum(t + 1, s_end - 1)
                    store_lane_sums(
                        dB_ptr + part + t_last * DSTATE, dB_last, k > 0, BLOCK_D, DSTATE, FOLD_SUMS
                    )
                    dB_last = dB_t
                else:
                    store_lane_sums(dB_ptr + part + t * DSTATE, dB_t, True, BLOCK_D, DSTATE, FOLD_SUMS)
                ddt = ddt_A + gB * u
                du = gB * dt
                if HAS_D:
                    du += Dskip * dy
                if DELTA_SOFTPLUS:
                    ddt = ddt * tl.sigmoid(dt_raw)
                ddt = tl.where(m_d, ddt, 0.0)
                dbias_acc += ddt
                tl.store(du_ptrs + t * stride_gl, du.to(du_ptr.dtype.element_ty), mask=m_d)
                tl.store(ddelta_ptrs + t * stride_gl, ddt.to(ddelta_ptr.dtype.element_ty), mask=m_d)
            if DEFER_SUMS:
                store_lane_sums(dB_ptr + part + s0 * DSTATE, dB_last, True, BLOCK_D, DSTATE, FOLD_SUMS)

    base = (i_b * n_seg + i_s) * dim
    store_state(dh0_ptr + base * DSTATE, g, dim, o_d, m_d, DSTATE)
    store_state(dA_ptr + base * DSTATE, dA_acc, dim, o_d, m_d, DSTATE)
    if HAS_D:
        tl.store(dD_ptr + base + o_d, dD_acc, mask=m_d)
    if HAS_BIAS:
        tl.store(dbias_ptr + base + o_d, dbias_acc, mask=m_d)
