"""Joining segment states: the short sequential pass that links segments scanned in parallel.

A segment of steps maps the state before it, h_in, to  h_out = Pi * h_in + s_local, where
Pi = exp(A * sum(dt)) (zero if a document starts inside the segment) and s_local is the segment's
own end state from a zero start. Forward: walk the segments in order, writing each one's h_in.
Backward: the adjoint runs the same recurrence the other way, g_in = Pi * g_out + q_local, so
walk them in reverse, writing each one's g_out.
"""

import triton
import triton.language as tl

from .triton_common import LOG2E


@triton.jit
def combine_states_kernel(
    local_ptr, dtsum_ptr, reset_ptr, A_ptr, carry_in_ptr, out_ptr, carry_out_ptr,
    stride_Ad, stride_An,
    stride_cib, stride_cid, stride_cin,
    stride_cob, stride_cod, stride_con,
    dim, dstate, n_seg,
    HAS_CARRY_IN: tl.constexpr, HAS_RESET: tl.constexpr, REVERSE: tl.constexpr,
    BLOCK_D: tl.constexpr, DSTATE: tl.constexpr,
):  # fmt: skip
    """local: (batch, n_seg, dim, dstate); dtsum: (batch, n_seg, dim); reset: (batch, n_seg);
    carry_in / carry_out: (batch, dim, dstate) any strides; out: (batch, n_seg, dim, dstate).

    out[s] = the carry entering segment s (forward: state before it; REVERSE: adjoint after it).
    carry_out = the carry after the last segment walked (forward: last state; REVERSE: d h0).
    """
    i_d = tl.program_id(0)
    i_b = tl.program_id(1).to(tl.int64)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    o_n = tl.arange(0, DSTATE)
    m_d = o_d < dim
    m_dn = m_d[:, None] & (o_n < dstate)[None, :]
    A2 = tl.load(A_ptr + o_d[:, None] * stride_Ad + o_n[None, :] * stride_An, mask=m_dn, other=0.0)
    A2 = A2.to(tl.float32) * LOG2E
    if HAS_CARRY_IN:
        ci = carry_in_ptr + i_b * stride_cib + o_d[:, None] * stride_cid + o_n[None, :] * stride_cin
        carry = tl.load(ci, mask=m_dn, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros([BLOCK_D, DSTATE], dtype=tl.float32)
    o_state = o_d[:, None] * dstate + o_n[None, :]
    for k in range(n_seg):
        s = n_seg - 1 - k if REVERSE else k
        base = (i_b * n_seg + s) * dim * dstate
        tl.store(out_ptr + base + o_state, carry, mask=m_dn)
        dt_sum = tl.load(dtsum_ptr + (i_b * n_seg + s) * dim + o_d, mask=m_d, other=0.0)
        decay = tl.exp2(dt_sum[:, None] * A2)
        if HAS_RESET:
            decay = decay * (1.0 - tl.load(reset_ptr + i_b * n_seg + s))
        carry = decay * carry + tl.load(local_ptr + base + o_state, mask=m_dn, other=0.0)
    co = carry_out_ptr + i_b * stride_cob + o_d[:, None] * stride_cod + o_n[None, :] * stride_con
    tl.store(co, carry, mask=m_dn)
