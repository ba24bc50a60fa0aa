"""Triton kernels for one decoding step of Mamba, for a whole batch at once.

``conv_state_update_kernel``: shift the conv window by one, append the new input, depthwise conv +
bias + SiLU. ``selective_state_update_kernel``: softplus(dt + bias), exp(dt A), the state update,
C . h, the D skip and the z gate, with the state (fp32) read and written once, in place.
Each program owns a block of channels of one batch row, so every state element is touched by
exactly one program. Names: ``i_`` program ids, ``o_`` offsets, ``p_`` pointers, ``b_`` register
tiles, ``m_`` masks.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..launch import optional_ptr, strides
from ..selective_scan.triton_common import softplus


@triton.jit
def conv_state_update_kernel(
    x_ptr,
    state_ptr,
    weight_ptr,
    bias_ptr,
    out_ptr,
    dim,
    stride_x_b,
    stride_x_d,
    stride_s_b,
    stride_s_d,
    stride_s_w,
    stride_w_d,
    stride_w_w,
    stride_o_b,
    stride_o_d,
    WIDTH: tl.constexpr,
    BLOCK_W: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SILU: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    i_d, i_b = tl.program_id(0), tl.program_id(1)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    o_w = tl.arange(0, BLOCK_W)
    m_d = o_d < dim
    m_window = m_d[:, None] & (o_w[None, :] < WIDTH)
    p_state = state_ptr + i_b * stride_s_b + o_d[:, None] * stride_s_d
    # The new window: column w takes the old column w + 1, the last column the new input.
    m_shifted = m_d[:, None] & (o_w[None, :] + 1 < WIDTH)
    b_shifted = tl.load(p_state + (o_w[None, :] + 1) * stride_s_w, mask=m_shifted, other=0.0)
    b_x = tl.load(x_ptr + i_b * stride_x_b + o_d * stride_x_d, mask=m_d, other=0.0)
    b_window = tl.where(o_w[None, :] == WIDTH - 1, b_x[:, None].to(b_shifted.dtype), b_shifted)
    tl.debug_barrier()  # every read of the old window happens before any write of the new one
    tl.store(p_state + o_w[None, :] * stride_s_w, b_window, mask=m_window)

    p_weight = weight_ptr + o_d[:, None] * stride_w_d + o_w[None, :] * stride_w_w
    b_weight = tl.load(p_weight, mask=m_window, other=0.0).to(tl.float32)
    b_out = tl.sum(b_window.to(tl.float32) * b_weight, axis=1)
    if HAS_BIAS:
        b_out += tl.load(bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32)
    if SILU:
        b_out = b_out * tl.sigmoid(b_out)
    p_out = out_ptr + i_b * stride_o_b + o_d * stride_o_d
    tl.store(p_out, b_out.to(out_ptr.dtype.element_ty), mask=m_d)


@triton.jit
def selective_state_update_kernel(
    state_ptr,
    x_ptr,
    dt_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    dt_bias_ptr,
    dt_proj_ptr,
    y_ptr,
    dim,
    dstate,
    rank,
    stride_s_b,
    stride_s_d,
    stride_s_n,
    stride_x_b,
    stride_x_d,
    stride_dt_b,
    stride_dt_d,
    stride_A_d,
    stride_A_n,
    stride_B_b,
    stride_B_n,
    stride_C_b,
    stride_C_n,
    stride_z_b,
    stride_z_d,
    stride_y_b,
    stride_y_d,
    stride_w_d,
    stride_w_r,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    DT_SOFTPLUS: tl.constexpr,
    A_IS_LOG: tl.constexpr,
    HAS_DT_PROJ: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_R: tl.constexpr,
):
    i_d, i_b = tl.program_id(0), tl.program_id(1)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    o_n = tl.arange(0, BLOCK_N)
    m_d, m_n = o_d < dim, o_n < dstate
    m_dn = m_d[:, None] & m_n[None, :]

    p_state = state_ptr + i_b * stride_s_b + o_d[:, None] * stride_s_d + o_n[None, :] * stride_s_n
    b_state = tl.load(p_state, mask=m_dn, other=0.0)
    b_x = tl.load(x_ptr + i_b * stride_x_b + o_d * stride_x_d, mask=m_d, other=0.0).to(tl.float32)
    if HAS_DT_PROJ:  # dt = W[d, :] . dt_low[b, :], the low-rank projection done here
        b_dt = tl.zeros([BLOCK_D], dtype=tl.float32)
        for i_r in range(0, rank, BLOCK_R):
            o_r = i_r + tl.arange(0, BLOCK_R)
            m_r = o_r < rank
            b_low = tl.load(dt_ptr + i_b * stride_dt_b + o_r * stride_dt_d, mask=m_r, other=0.0)
            p_w = dt_proj_ptr + o_d[:, None] * stride_w_d + o_r[None, :] * stride_w_r
            b_w = tl.load(p_w, mask=m_d[:, None] & m_r[None, :], other=0.0).to(tl.float32)
            b_dt += tl.sum(b_w * b_low.to(tl.float32)[None, :], axis=1)
    else:
        b_dt = tl.load(dt_ptr + i_b * stride_dt_b + o_d * stride_dt_d, mask=m_d, other=0.0).to(tl.float32)
    if HAS_DT_BIAS:
        b_dt += tl.load(dt_bias_ptr + o_d, mask=m_d, other=0.0).to(tl.float32)
    if DT_SOFTPLUS:
        b_dt = softplus(b_dt)
    p_A = A_ptr + o_d[:, None] * stride_A_d + o_n[None, :] * stride_A_n
    b_A = tl.load(p_A, mask=m_dn, other=0.0).to(tl.float32)
    if A_IS_LOG:
        b_A = -tl.exp(b_A)
    b_B = tl.load(B_ptr + i_b * stride_B_b + o_n * stride_B_n, mask=m_n, other=0.0).to(tl.float32)
    b_C = tl.load(C_ptr + i_b * stride_C_b + o_n * stride_C_n, mask=m_n, other=0.0).to(tl.float32)

    b_state = b_state * tl.exp(b_A * b_dt[:, None]) + (b_dt * b_x)[:, None] * b_B[None, :]
    tl.store(p_state, b_state, mask=m_dn)
    b_y = tl.sum(b_state * b_C[None, :], axis=1)
    if HAS_D:
        b_y += b_x * tl.load(D_ptr + o_d, mask=m_d, other=0.0).to(tl.float32)
    if HAS_Z:
        b_z = tl.load(z_ptr + i_b * stride_z_b + o_d * stride_z_d, mask=m_d, other=0.0).to(tl.float32)
        b_y *= b_z * tl.sigmoid(b_z)
    tl.store(y_ptr + i_b * stride_y_b + o_d * stride_y_d, b_y.to(y_ptr.dtype.element_ty), mask=m_d)


def conv_state_update_triton(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    silu: bool,
    block_d: int | None = None,
) -> torch.Tensor:
    """See ``conv_state_update``; weight is (dim, width). Returns (batch, dim) contiguous, x's dtype."""
    batch, dim = x.shape
    width = conv_state.shape[2]
    out = torch.empty(batch, dim, dtype=x.dtype, device=x.device)
    if block_d is None:
        block_d = 128 if x.is_cuda else 4
    grid = (triton.cdiv(dim, block_d), batch)
    conv_state_update_kernel[grid](
        x_ptr=x,
        state_ptr=conv_state,
        weight_ptr=weight,
        bias_ptr=optional_ptr(bias, weight),
        out_ptr=out,
        dim=dim,
        **strides(x, "stride_x_b", "stride_x_d"),
        **strides(conv_state, "stride_s_b", "stride_s_d", "stride_s_w"),
        **strides(weight, "stride_w_d", "stride_w_w"),
        **strides(out, "stride_o_b", "stride_o_d"),
        WIDTH=width,
        BLOCK_W=triton.next_power_of_2(width),
        HAS_BIAS=bias is not None,
        SILU=silu,
        BLOCK_D=block_d,
        num_warps=4 if x.is_cuda else 1,
    )
    return out


def selective_state_update_triton(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    dt_bias: torch.Tensor | None,
    dt_softplus: bool,
    a_is_log: bool,
    dt_proj_weight: torch.Tensor | None = None,
    block_d: int | None = None,
) -> torch.Tensor:
    """See ``selective_state_update``. Returns y (batch, dim) contiguous in x's dtype."""
    batch, dim, dstate = state.shape
    y = torch.empty(batch, dim, dtype=x.dtype, device=x.device)
    block_n = triton.next_power_of_2(dstate)
    if block_d is None:
        # Small batches: small blocks, so that the few rows still spread over every SM.
        block_d = (16 if batch * dim <= 16384 else 32) if x.is_cuda else 4
        block_d = max(1, min(block_d, 2048 // block_n))
    grid = (triton.cdiv(dim, block_d), batch)
    rank = dt_proj_weight.shape[1] if dt_proj_weight is not None else 0
    selective_state_update_kernel[grid](
        state_ptr=state,
        x_ptr=x,
        dt_ptr=dt,
        A_ptr=A,
        B_ptr=B,
        C_ptr=C,
        D_ptr=optional_ptr(D, A),
        z_ptr=optional_ptr(z, x),
        dt_bias_ptr=optional_ptr(dt_bias, A),
        dt_proj_ptr=optional_ptr(dt_proj_weight, A),
        y_ptr=y,
        dim=dim,
        dstate=dstate,
        rank=rank,
        **strides(state, "stride_s_b", "stride_s_d", "stride_s_n"),
        **strides(x, "stride_x_b", "stride_x_d"),
        **strides(dt, "stride_dt_b", "stride_dt_d"),
        **strides(A, "stride_A_d", "stride_A_n"),
        **strides(B, "stride_B_b", "stride_B_n"),
        **strides(C, "stride_C_b", "stride_C_n"),
        **strides(z, "stride_z_b", "stride_z_d"),
        **strides(y, "stride_y_b", "stride_y_d"),
        **strides(dt_proj_weight, "stride_w_d", "stride_w_r"),
        HAS_D=D is not None,
        HAS_Z=z is not None,
        HAS_DT_BIAS=dt_bias is not None,
        DT_SOFTPLUS=dt_softplus,
        A_IS_LOG=a_is_log,
        HAS_DT_PROJ=dt_proj_weight is not None,
        BLOCK_D=block_d,
        BLOCK_N=block_n,
        BLOCK_R=min(32, triton.next_power_of_2(max(rank, 1))) if x.is_cuda else 4,
        num_warps=(4 if block_d * block_n >= 512 else 2) if x.is_cuda else 1,
    )
    return y
