"""Triton kernels of the fused residual add + LayerNorm / RMSNorm.

Rows are independent: a program owns BLOCK_M whole rows (BLOCK_N >= d columns) as one register
tile; statistics are fp32 reductions along the row. The backward gives each program a contiguous
range of rows and accumulates its share of dweight and dbias in registers, written once as fp32
partial sums (n_programs, d) that the host adds up.
"""

import triton
import triton.language as tl


@triton.jit
def norm_fwd_kernel(
    X, RES, W, B, Y, RES_OUT, MEAN, RSTD,
    n_rows, n_cols, stride_x, stride_res, stride_y, stride_res_out, eps,
    IS_RMS_NORM: tl.constexpr, HAS_RESIDUAL: tl.constexpr, HAS_BIAS: tl.constexpr,
    STORE_RESIDUAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """z = x (+ res) in fp32; y = norm(z) * w (+ b); stores y, z (if STORE_RESIDUAL), rstd (and mean)."""
    i_m = tl.program_id(0)
    o_m = i_m * BLOCK_M + tl.arange(0, BLOCK_M)
    o_n = tl.arange(0, BLOCK_N)
    m_m = o_m < n_rows
    m_n = o_n < n_cols
    m_mn = m_m[:, None] & m_n[None, :]
    o_row = o_m.to(tl.int64)[:, None]

    b_z = tl.load(X + o_row * stride_x + o_n[None, :], mask=m_mn, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        b_z += tl.load(RES + o_row * stride_res + o_n[None, :], mask=m_mn, other=0.0).to(tl.float32)
    if STORE_RESIDUAL:
        p_res_out = RES_OUT + o_row * stride_res_out + o_n[None, :]
        tl.store(p_res_out, b_z.to(RES_OUT.dtype.element_ty), mask=m_mn)
    if IS_RMS_NORM:
        b_zc = b_z
    else:
        b_mean = tl.sum(b_z, axis=1) / n_cols
        tl.store(MEAN + o_m, b_mean, mask=m_m)
        b_zc = tl.where(m_mn, b_z - b_mean[:, None], 0.0)
    b_rstd = 1.0 / tl.sqrt(tl.sum(b_zc * b_zc, axis=1) / n_cols + eps)
    tl.store(RSTD + o_m, b_rstd, mask=m_m)

    b_w = tl.load(W + o_n, mask=m_n, other=0.0).to(tl.float32)
    b_y = b_zc * b_rstd[:, None] * b_w[None, :]
    if HAS_BIAS:
        b_y += tl.load(B + o_n, mask=m_n, other=0.0).to(tl.float32)[None, :]
    tl.store(Y + o_row * stride_y + o_n[None, :], b_y.to(Y.dtype.element_ty), mask=m_mn)


@triton.jit
def norm_bwd_kernel(
    Z, W, DY, DRES_OUT, DX, DRES, DW_PART, DB_PART, MEAN, RSTD,
    n_rows, n_cols, rows_per_program,
    stride_z, stride_dy, stride_dres_out, stride_dx, stride_dres,
    IS_RMS_NORM: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_DRES_OUT: tl.constexpr,
    STORE_DRES: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """For rows [i_p * rows_per_program, ...): dz = d norm(z) / dz . dy (+ dres_out), written as dx (and
    as dres in the residual's dtype when STORE_DRES); dweight and dbias partial sums for program i_p.

    With zhat = (z - mean) * rstd and g = w * dy (per row, over its d columns):
        RMSNorm:   dz = rstd * (g - zhat * mean(zhat * g))
        LayerNorm: dz = rstd * (g - zhat * mean(zhat * g) - mean(g))
    """
    i_p = tl.program_id(0)
    row_start = i_p * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    o_n = tl.arange(0, BLOCK_N)
    m_n = o_n < n_cols
    b_w = tl.load(W + o_n, mask=m_n, other=0.0).to(tl.float32)
    b_dw = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    b_db = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_row in range(row_start, row_end, BLOCK_M):
        o_m = i_row + tl.arange(0, BLOCK_M)
        m_m = o_m < row_end
        m_mn = m_m[:, None] & m_n[None, :]
        o_row = o_m.to(tl.int64)[:, None]
        b_z = tl.load(Z + o_row * stride_z + o_n[None, :], mask=m_mn, other=0.0).to(tl.float32)
        b_dy = tl.load(DY + o_row * stride_dy + o_n[None, :], mask=m_mn, other=0.0).to(tl.float32)
        b_rstd = tl.load(RSTD + o_m, mask=m_m, other=0.0)
        if IS_RMS_NORM:
            b_zhat = b_z * b_rstd[:, None]
        else:
            b_mean = tl.load(MEAN + o_m, mask=m_m, other=0.0)
            b_zhat = tl.where(m_mn, (b_z - b_mean[:, None]) * b_rstd[:, None], 0.0)
        b_g = b_dy * b_w[None, :]
        b_c1 = tl.sum(b_zhat * b_g, axis=1) / n_cols
        if IS_RMS_NORM:
            b_dz = (b_g - b_zhat * b_c1[:, None]) * b_rstd[:, None]
        else:
            b_c2 = tl.sum(b_g, axis=1) / n_cols
            b_dz = (b_g - b_zhat * b_c1[:, None] - b_c2[:, None]) * b_rstd[:, None]
        if HAS_DRES_OUT:
            p_dres_out = DRES_OUT + o_row * stride_dres_out + o_n[None, :]
            b_dz += tl.load(p_dres_out, mask=m_mn, other=0.0).to(tl.float32)
        tl.store(DX + o_row * stride_dx + o_n[None, :], b_dz.to(DX.dtype.element_ty), mask=m_mn)
        if STORE_DRES:
            tl.store(DRES + o_row * stride_dres + o_n[None, :], b_dz.to(DRES.dtype.element_ty), mask=m_mn)
        b_dw += b_dy * b_zhat
        if HAS_BIAS:
            b_db += b_dy
    tl.store(DW_PART + i_p * n_cols + o_n, tl.sum(b_dw, axis=0), mask=m_n)
    if HAS_BIAS:
        tl.store(DB_PART + i_p * n_cols + o_n, tl.sum(b_db, axis=0), mask=m_n)
