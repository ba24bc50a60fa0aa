"""The ground truth: a plain sequential selective scan in fp32 PyTorch.

Slow (one step of Python per time step, autograd through every step) and obviously correct.
Every faster implementation in this package is tested against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def expand_groups(BC: torch.Tensor, dim: int) -> torch.Tensor:
    """(batch, groups, dstate, seqlen) -> (batch, dim, dstate, seqlen); channel d uses group d*groups//dim."""
    groups = BC.shape[1]
    return BC.repeat_interleave(dim // groups, dim=1)


def as_grouped(BC: torch.Tensor) -> torch.Tensor:
    """(batch, dstate, seqlen) or (batch, groups, dstate, seqlen) -> (batch, groups, dstate, seqlen)."""
    return BC.unsqueeze(1) if BC.dim() == 3 else BC


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
):
    """Sequential reference of the selective scan (see ``kernels.selective_scan_fn`` for the contract).

    u, delta, z: (batch, dim, seqlen); A: (dim, dstate); B, C: (batch, dstate, seqlen) or
    (batch, groups, dstate, seqlen); D, delta_bias: (dim,); initial_state: (batch, dim, dstate);
    seq_idx: (batch, seqlen) int, the state is reset to zero where it changes.
    Returns out (batch, dim, seqlen) in u's dtype, and last_state (batch, dim, dstate) fp32 if asked.
    """
    dtype_in = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    batch, dim, seqlen = u.shape
    u = u.to(compute)
    dt = delta.to(compute)
    if delta_bias is not None:
        dt = dt + delta_bias.to(compute)[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    A = A.to(compute)
    Bx = expand_groups(as_grouped(B), dim).to(compute)  # (batch, dim, dstate, seqlen)
    Cx = expand_groups(as_grouped(C), dim).to(compute)
    h = u.new_zeros(batch, dim, A.shape[1]) if initial_state is None else initial_state.to(compute)
    ys = []
    for t in range(seqlen):
        if seq_idx is not None and t > 0:
            same_doc = (seq_idx[:, t] == seq_idx[:, t - 1]).to(compute)  # (batch,)
            h = h * same_doc[:, None, None]
        decay = torch.exp(dt[:, :, t, None] * A)  # (batch, dim, dstate)
        h = decay * h + (dt[:, :, t] * u[:, :, t])[:, :, None] * Bx[:, :, :, t]
        ys.append((h * Cx[:, :, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) if seqlen > 0 else u.new_zeros(batch, dim, 0)
    out = y if D is None else y + u * D.to(compute)[:, None]
    if z is not None:
        out = out * F.silu(z.to(compute))
    out = out.to(dtype_in)
    if return_last_state:
        return out, h.to(torch.float64 if compute == torch.float64 else torch.float32)
    return out
