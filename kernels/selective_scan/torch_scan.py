"""The PyTorch selective scan used on CPUs: a vectorized recurrence with a hand-written backward.

Each time step is a few whole-tensor operations over (batch, dim, dstate), without an autograd
tape; the backward walks time in reverse with the adjoint recurrence. This is the same algorithm
the Triton kernels run, written in plain PyTorch, and the fast path when no GPU is present.

Notation (per batch b, channel d, state n, step t), all in fp32 (fp64 for fp64 inputs):
    dt[t]    = softplus(delta[t] + bias) or delta[t] + bias
    h[t]     = keep[t] * exp(dt[t] A) * h[t-1] + dt[t] B[t] u[t]        keep[t] = 0 at a document start
    y[t]     = C[t] . h[t] + D u[t];   out[t] = y[t] * silu(z[t])
Adjoint, g[t] = dLoss/dh[t]:
    g[t]     = C[t] dy[t] + keep[t+1] exp(dt[t+1] A) g[t+1]               (g[L-1] also gets d(last_state))
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .ref import as_grouped

# Below this many elements per step, intra-op threads cost more than they save (and under load from
# other processes, spinning threads made the loops 20x slower on a 2-core machine).
SMALL_STEP = 1 << 18


@contextlib.contextmanager
def _one_thread_for_small_steps(numel_per_step: int):
    """Run the per-step loops on one thread when each step's tensors are small (restored on exit)."""
    threads = torch.get_num_threads()
    if numel_per_step >= SMALL_STEP or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _keep_mask(seq_idx: torch.Tensor | None, batch: int, seqlen: int, dtype, device) -> torch.Tensor | None:
    """(batch, seqlen): 0 where a new document starts (t > 0 and seq_idx changes), else 1."""
    if seq_idx is None:
        return None
    keep = torch.ones(batch, seqlen, dtype=dtype, device=device)
    keep[:, 1:] = (seq_idx[:, 1:] == seq_idx[:, :-1]).to(dtype)
    return keep


class SelectiveScanTorch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx):
        compute = _compute_dtype(u)
        batch, dim, seqlen = u.shape
        B4, C4 = as_grouped(B), as_grouped(C)
        groups, dstate = B4.shape[1], A.shape[1]
        heads = dim // groups  # channels per group
        uc = u.to(compute).view(batch, groups, heads, seqlen)
        dt_raw = delta.to(compute).view(batch, groups, heads, seqlen)
        if delta_bias is not None:
            dt_raw = dt_raw + delta_bias.to(compute).view(groups, heads, 1)
        dt = F.softplus(dt_raw) if delta_softplus else dt_raw
        Ac = A.to(compute).view(groups, heads, dstate)
        Bc, Cc = B4.to(compute), C4.to(compute)  # (batch, groups, dstate, seqlen)
        keep = _keep_mask(seq_idx, batch, seqlen, compute, u.device)

        h = (
            torch.zeros(batch, groups, heads, dstate, dtype=compute, device=u.device)
            if initial_state is None
            else initial_state.to(compute).view(batch, groups, heads, dstate)
        )
        states = torch.empty(batch, groups, heads, seqlen, dstate, dtype=compute, device=u.device)
        dtu = dt * uc
        with _one_thread_for_small_steps(h.numel() if u.device.type == "cpu" else SMALL_STEP):
            for t in range(seqlen):
                decay = torch.exp(dt[..., t, None] * Ac)  # (batch, groups, heads, dstate)
                if keep is not None:
                    decay = decay * keep[:, t, None, None, None]
                h = decay * h + dtu[..., t, None] * Bc[:, :, None, :, t]
                states[:, :, :, t] = h
        y = torch.einsum("bghln,bgnl->bghl", states, Cc)
        if D is not None:
            y = y + uc * D.to(compute).view(groups, heads, 1)
        out = y * F.silu(z.to(compute).view_as(y)) if z is not None else y
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, initial_state, seq_idx, states)
        ctx.delta_softplus = delta_softplus
        last_state = h.reshape(batch, dim, dstate)
        return out.reshape(batch, dim, seqlen).to(u.dtype), last_state.to(compute)

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, initial_state, seq_idx, states = ctx.saved_tensors
        compute = states.dtype
        batch, dim, seqlen = u.shape
        B4, C4 = as_grouped(B), as_grouped(C)
        groups, dstate = B4.shape[1], A.shape[1]
        heads = dim // groups
        uc = u.to(compute).view(batch, groups, heads, seqlen)
        dt_raw = delta.to(compute).view(batch, groups, heads, seqlen)
        if delta_bias is not None:
            dt_raw = dt_raw + delta_bias.to(compute).view(groups, heads, 1)
        dt = F.softplus(dt_raw) if ctx.delta_softplus else dt_raw
        Ac = A.to(compute).view(groups, heads, dstate)
        Bc, Cc = B4.to(compute), C4.to(compute)
        keep = _keep_mask(seq_idx, batch, seqlen, compute, u.device)
        dout = dout.to(compute).view(batch, groups, heads, seqlen)

        # Output gate and skip.
        y = torch.einsum("bghln,bgnl->bghl", states, Cc)
        if D is not None:
            y = y + uc * D.to(compute).view(groups, heads, 1)
        dz = None
        if z is not None:
            zc = z.to(compute).view_as(y)
            sig = torch.sigmoid(zc)
            dz = dout * y * sig * (1 + zc * (1 - sig))
            dy = dout * zc * sig
        else:
            dy = dout
        du = dy * D.to(compute).view(groups, heads, 1) if D is not None else torch.zeros_like(uc)
        dD = (dy * uc).sum(dim=(0, 3)).reshape(dim) if D is not None else None
        dC = torch.einsum("bghl,bghln->bgnl", dy, states)

        # Adjoint recurrence, walking time backwards.
        g = (
            dlast.to(compute).view(batch, groups, heads, dstate).clone()
            if dlast is not None
            else torch.zeros(batch, groups, heads, dstate, dtype=compute, device=u.device)
        )
        h0 = None if initial_state is None else initial_state.to(compute).view(batch, groups, heads, dstate)
        ddt = torch.empty_like(dt)
        dB = torch.empty_like(Bc)
        dA = torch.zeros_like(Ac)
        with _one_thread_for_small_steps(g.numel() if u.device.type == "cpu" else SMALL_STEP):
            for t in range(seqlen - 1, -1, -1):
                g = g + dy[..., t, None] * Cc[:, :, None, :, t]
                decay = torch.exp(dt[..., t, None] * Ac)
                if keep is not None:
                    decay = decay * keep[:, t, None, None, None]
                h_prev = states[:, :, :, t - 1] if t > 0 else h0
                Bt = Bc[:, :, None, :, t]
                # dLoss/d(dt*A) through the decay; keep[t] is already folded into decay.
                d_dtA = g * h_prev * decay if h_prev is not None else None
                ddt_t = (g * Bt).sum(-1) * uc[..., t]
                if d_dtA is not None:
                    ddt_t = ddt_t + (d_dtA * Ac).sum(-1)
                    dA += (d_dtA * dt[..., t, None]).sum(0)
                ddt[..., t] = ddt_t
                du[..., t] += (g * Bt).sum(-1) * dt[..., t]
                dB[:, :, :, t] = (g * (dt[..., t] * uc[..., t])[..., None]).sum(2)
                g = g * decay
        d_initial = g.reshape(batch, dim, dstate) if initial_state is not None else None

        ddelta = ddt * torch.sigmoid(dt_raw) if ctx.delta_softplus else ddt
        d_delta_bias = ddelta.sum(dim=(0, 3)).reshape(dim) if delta_bias is not None else None
        return (
            du.reshape(batch, dim, seqlen).to(u.dtype),
            ddelta.reshape(batch, dim, seqlen).to(delta.dtype),
            dA.reshape(dim, dstate).to(A.dtype),
            dB.reshape(B.shape).to(B.dtype),
            dC.reshape(C.shape).to(C.dtype),
            dD.to(D.dtype) if dD is not None else None,
            dz.reshape(z.shape).to(z.dtype) if dz is not None else None,
            d_delta_bias.to(delta_bias.dtype) if d_delta_bias is not None else None,
            None,
            d_initial.to(initial_state.dtype) if d_initial is not None else None,
            None,
        )


def selective_scan_torch(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, initial_state=None, seq_idx=None
):
    """Returns (out, last_state); arguments as ``selective_scan_fn`` (already validated)."""
    return SelectiveScanTorch.apply(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx
    )
