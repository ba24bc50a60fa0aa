"""Joining segment states: the short sequential pass that links segments scanned in parallel.

A segment of steps maps the state before it, h_in, to  h_out = Pi * h_in + s_local, where
Pi = exp(A * sum(dt)) (zero if a document starts inside the segment) and s_local is the segment's
own end state from a zero start. Forward: walk the segments in order, writing each one's h_in.
Backward: the adjoint runs the same recurrence the other way, g_in = Pi * g_out + q_local, so
walk them in reverse, writing each one's g_out.
"""

import triton
import triton.language as tl

from .triton_common import LOG2E, load_state, store_state, zero_state


@triton.jit
def combine_states_kernel(
    local_ptr, dtsum_ptr, reset_ptr, A_ptr, carry_in_ptr, out_ptr, carry_out_ptr,
    stride_Ad, stride_An,
    stride_cib, stride_cid, stride_cin,
    stride_cob, stride_cod, stride_con,
    dim, n_seg,
    HAS_CARRY_IN: tl.constexpr, HAS_RESET: tl.constexpr, REVERSE: tl.constexpr,
    BLOCK_D: tl.constexpr, DSTATE: tl.constexpr,
):  # fmt: skip
    """local, out: (batch, n_seg, dstate, dim); dtsum: (batch, n_seg, dim); reset: (batch, n_seg);
    carry_in / carry_out: (batch, dim, dstate) with the given strides.

    out[s] = the carry entering segment s (forward: state before it; REVERSE: adjoint after it).
    carry_out = the carry after the last segment walked (forward: last state; REVERSE: d h0).
    """
    i_d = tl.program_id(0)
    i_b = tl.program_id(1).to(tl.int64)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_d < dim
    A = load_state(A_ptr, stride_An, o_d * stride_Ad, m_d, DSTATE)
    if HAS_CARRY_IN:
        carry = load_state(carry_in_ptr + i_b * stride_cib, stride_cin, o_d * stride_cid, m_d, DSTATE)
    else:
        carry = zero_state(BLOCK_D, DSTATE)
    for k in range(n_seg):
        s = n_seg - 1 - k if REVERSE else k
        base = (i_b * n_seg + s) * DSTATE * dim
        store_state(out_ptr + base, carry, dim, o_d, m_d, DSTATE)
        dt2 = tl.load(dtsum_ptr + (i_b * n_seg + s) * dim + o_d, mask=m_d, other=0.0) * LOG2E
        keep = 1.0
        if HAS_RESET:
            keep = 1.0 - tl.load(reset_ptr + i_b * n_seg + s)
        local = load_state(local_ptr + base, dim, o_d, m_d, DSTATE)
        new = ()
        for n in tl.static_range(DSTATE):
            new = new + (tl.exp2(dt2 * A[n]) * keep * carry[n] + local[n],)
        carry = new
    store_state(carry_out_ptr + i_b * stride_cob, carry, stride_con, o_d * stride_cod, m_d, DSTATE)
