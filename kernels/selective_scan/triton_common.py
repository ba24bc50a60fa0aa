"""Pieces shared by the forward and backward Triton kernels of the selective scan.

Layout of a program's work: one program owns BLOCK_D channels of one (batch, group) and walks time
sequentially; each thread holds the fp32 state of its channels for all DSTATE states in registers.
At every step it reads one row of u, delta, z (BLOCK_D values; contiguous when the tensors are
(batch, seqlen, dim) memory viewed as (batch, dim, seqlen)) and one column of B and C (DSTATE values).
"""

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def channel_block(dim_per_group, BLOCK_D: tl.constexpr):
    """This program's work: grid (groups * blocks per group, batch, segments).

    Returns (i_dg, i_b, i_s, i_g, o_d, m_d): the channel-block index, batch (int64), segment and
    group indices, the (BLOCK_D,) channel indices and their mask (a block never crosses groups).
    """
    i_dg = tl.program_id(0)
    i_b = tl.program_id(1).to(tl.int64)
    i_s = tl.program_id(2)
    blocks_per_group = tl.cdiv(dim_per_group, BLOCK_D)
    i_g = i_dg // blocks_per_group
    o_in_group = (i_dg % blocks_per_group) * BLOCK_D + tl.arange(0, BLOCK_D)
    return i_dg, i_b, i_s, i_g, i_g * dim_per_group + o_in_group, o_in_group < dim_per_group


@triton.jit
def softplus(x):
    """log(1 + exp(x)) to fp32 accuracy at every x, and x itself above 20 (as torch's softplus and the
    reference CUDA kernel's log1pf(expf(x)) do). log1p(e) of e = exp(-|x|) is log(u) * e / (u - 1) with
    u = 1 + e rounded (u - 1 is exact): a plain log(1 + e) loses e's low bits to the rounding of 1 + e,
    a few ulps of 1.0 (relative error ~1e-3 at x = -9, softplus 0 below x = -16.6)."""
    e = tl.exp(-tl.abs(x))
    u = 1.0 + e
    rounded_away = u == 1.0  # e below half an ulp of 1.0: log1p(e) = e
    log1p_e = tl.where(rounded_away, e, tl.log(u) * (e / tl.where(rounded_away, 1.0, u - 1.0)))
    return tl.where(x > 20.0, x, tl.maximum(x, 0.0) + log1p_e)


@triton.jit
def load_dt(t, L, delta_ptrs, stride_deltal, bias, mask_d, DELTA_SOFTPLUS: tl.constexpr):
    """(dt, dt_raw) at step t as fp32 rows (BLOCK_D,); dt = 0 past the end (t >= L) or outside mask_d,
    so that such a step leaves the state unchanged."""
    m = mask_d & (t < L)
    dt_raw = tl.load(delta_ptrs + t * stride_deltal, mask=m, other=0.0).to(tl.float32) + bias
    dt = softplus(dt_raw) if DELTA_SOFTPLUS else dt_raw
    return tl.where(m, dt, 0.0), dt_raw


@triton.jit
def load_row(t, L, ptrs, stride_l, mask_d):
    """Row t (BLOCK_D,) of a (batch, dim, seqlen) tensor as fp32, zero past the end."""
    return tl.load(ptrs + t * stride_l, mask=mask_d & (t < L), other=0.0).to(tl.float32)


@triton.jit
def keep_state(t, L, seq_ptr, stride_seql, seq_prev, HAS_SEQ_IDX: tl.constexpr):
    """(keep, seq_t): keep = 0.0 where a new document starts at step t (seq_idx changes), else 1.0."""
    if HAS_SEQ_IDX:
        seq_t = tl.load(seq_ptr + t * stride_seql, mask=t < L, other=0)
        keep = tl.where((seq_t != seq_prev) & (t < L), 0.0, 1.0)
    else:
        seq_t = seq_prev
        keep = 1.0
    return keep, seq_t


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


# The state of a program is a tuple of DSTATE register vectors of shape (BLOCK_D,), one per state
# index n, so that every sum over n stays inside a thread. State buffers in memory are laid out
# state-major, (..., dstate, dim), so that each vector is one contiguous row.


@triton.jit
def load_state(ptr, stride_n, o_d, m_d, DSTATE: tl.constexpr):
    """Tuple of DSTATE fp32 vectors (BLOCK_D,) read from ptr + n * stride_n + o_d (o_d pre-scaled)."""
    h = ()
    for n in tl.static_range(DSTATE):
        h = h + (tl.load(ptr + n * stride_n + o_d, mask=m_d, other=0.0).to(tl.float32),)
    return h


@triton.jit
def store_state(ptr, h, stride_n, o_d, m_d, DSTATE: tl.constexpr):
    for n in tl.static_range(DSTATE):
        tl.store(ptr + n * stride_n + o_d, h[n], mask=m_d)


@triton.jit
def zero_state(BLOCK_D: tl.constexpr, DSTATE: tl.constexpr):
    h = ()
    for _ in tl.static_range(DSTATE):
        h = h + (tl.zeros([BLOCK_D], dtype=tl.float32),)
    return h


@triton.jit
def load_vec4(ptrs):
    """Four 32-bit words from each 16-byte-aligned address in `ptrs`, as one vector load (GPU only)."""
    return tl.inline_asm_elementwise(
        "ld.global.nc.v4.b32 {$0, $1, $2, $3}, [$4];",
        "=r,=r,=r,=r,l",
        [ptrs],
        dtype=(tl.int32, tl.int32, tl.int32, tl.int32),
        is_pure=True,
        pack=1,
    )


@triton.jit
def load_state_row(ptr, t, t_end, stride_n, stride_l, zeros_d, DSTATE: tl.constexpr, VEC: tl.constexpr):
    """Tuple of the DSTATE values ptr[n * stride_n + t * stride_l] (B or C at step t), zero at t >= t_end.

    VEC (GPU, bf16 or fp32 rows with stride_n = 1, 16-byte aligned): 16-byte vector loads, fp32
    results. Otherwise one scalar load per value, in the tensor's dtype. `zeros_d` is a (BLOCK_D,)
    int32 zero vector that gives the vector loads their shape.
    """
    vals = ()
    if VEC:
        row = ptr + tl.minimum(t, t_end - 1) * stride_l + zeros_d
        keep = tl.where(t < t_end, 1.0, 0.0)
        if ptr.dtype.element_ty == tl.bfloat16:
            for q in tl.static_range(DSTATE // 8):
                words = load_vec4(row.to(tl.pointer_type(tl.int32)) + 4 * q)
                for w in tl.static_range(4):
                    lo = (words[w] << 16).to(tl.float32, bitcast=True)
                    hi = (words[w] & -65536).to(tl.float32, bitcast=True)
                    vals = vals + (lo * keep, hi * keep)
        else:
            for q in tl.static_range(DSTATE // 4):
                words = load_vec4(row.to(tl.pointer_type(tl.int32)) + 4 * q)
                for w in tl.static_range(4):
                    vals = vals + (words[w].to(tl.float32, bitcast=True) * keep,)
    else:
        for n in tl.static_range(DSTATE):
            vals = vals + (tl.load(ptr + n * stride_n + t * stride_l, mask=t < t_end, other=0.0),)
    return vals


@triton.jit
def load_step_inputs(
    t, t_end, u_ptrs, stride_ul, delta_ptrs, stride_deltal, z_ptrs, stride_zl,
    B_ptrs, stride_Bn, stride_Bl, C_ptrs, stride_Cn, stride_Cl, m_d,
    HAS_Z: tl.constexpr, HAS_C: tl.constexpr, DSTATE: tl.constexpr, VEC_BC: tl.constexpr,
):  # fmt: skip
    """Everything step t reads, raw: rows u, delta, z (BLOCK_D,) and B, C (tuples of DSTATE values).

    Zeros at t >= t_end. Kernels load step t + 1 while they compute step t, so that the memory
    latency overlaps the arithmetic of a step.
    """
    m = m_d & (t < t_end)
    u = tl.load(u_ptrs + t * stride_ul, mask=m, other=0.0)
    delta = tl.load(delta_ptrs + t * stride_deltal, mask=m, other=0.0)
    z = tl.load(z_ptrs + t * stride_zl, mask=m, other=0.0) if HAS_Z else u
    zeros_d = tl.zeros(m_d.shape, dtype=tl.int32)
    Bs = load_state_row(B_ptrs, t, t_end, stride_Bn, stride_Bl, zeros_d, DSTATE, VEC_BC)
    Cs = ()
    if HAS_C:
        Cs = load_state_row(C_ptrs, t, t_end, stride_Cn, stride_Cl, zeros_d, DSTATE, VEC_BC)
    return u, delta, z, Bs, Cs


@triton.jit
def dt_from_raw(delta, bias, m_d, DELTA_SOFTPLUS: tl.constexpr):
    """dt (fp32) from a raw delta row: + bias, softplus; zero outside m_d."""
    dt_raw = delta.to(tl.float32) + bias
    dt = softplus(dt_raw) if DELTA_SOFTPLUS else dt_raw
    return tl.where(m_d, dt, 0.0), dt_raw


@triton.jit
def sum_over_channels(vals, o_c, BLOCK_D: tl.constexpr, N: tl.constexpr):
    """Sums each of the N vectors in `vals` over its BLOCK_D channels, as a reduce-scatter.

    vals: tuple of N (BLOCK_D,) vectors; o_c = tl.arange(0, BLOCK_D). N and BLOCK_D are powers of
    two with N <= BLOCK_D. Returns (total, index), both (BLOCK_D,): channel c holds the full sum of
    vals[index[c]]; every index appears BLOCK_D // N times. Each butterfly round exchanges half of
    the remaining values with the partner channel c ^ m (a warp shuffle across threads), so the N
    sums cost about N exchanges instead of N * log2(BLOCK_D) for N separate reductions.
    """
    index = tl.zeros([BLOCK_D], dtype=tl.int32)
    for r in tl.static_range(16):  # channel-index bits, the lowest (same thread) first
        if (1 << r) < BLOCK_D:
            partner = o_c ^ (1 << r)
            if (N >> r) > 1:  # halving round: keep one half of the values, send the other
                upper = (o_c & (1 << r)) != 0
                new = ()
                for j in tl.static_range(N >> (r + 1)):
                    keep = tl.where(upper, vals[j + (N >> (r + 1))], vals[j])
                    send = tl.where(upper, vals[j], vals[j + (N >> (r + 1))])
                    new = new + (keep + tl.gather(send, partner, axis=0),)
                vals = new
                index = index + upper.to(tl.int32) * (N >> (r + 1))
            else:  # one value left: a plain butterfly over the remaining bits
                vals = (vals[0] + tl.gather(vals[0], partner, axis=0),)
    return vals[0], index


@triton.jit
def store_channel_sums(ptr, vals, o_c, mask, BLOCK_D: tl.constexpr, DSTATE: tl.constexpr):
    """ptr[n] = sum over the program's channels of vals[n], for each of the DSTATE vectors."""
    if (DSTATE & (DSTATE - 1)) == 0 and DSTATE <= BLOCK_D:
        total, index = sum_over_channels(vals, o_c, BLOCK_D, DSTATE)
        tl.store(ptr + index, total, mask=mask)
    else:
        for n in tl.static_range(DSTATE):
            tl.store(ptr + n, tl.sum(vals[n], axis=0), mask=mask)
