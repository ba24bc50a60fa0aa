"""The ground truth for one decoding step of Mamba, in plain PyTorch (fp32 arithmetic).

Two parts, as in the layer: the short causal convolution's step (shift the window, convolve, SiLU)
and the selective state update (discretize with this token's dt, update the state, read it out).
These functions also serve as the CPU path of ``conv_state_update`` / ``selective_state_update``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv_state_update_ref(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    silu: bool = True,
) -> torch.Tensor:
    """One step of a causal depthwise convolution; ``conv_state`` is updated in place.

    x: (batch, dim) the new input. conv_state: (batch, dim, width) the last ``width`` inputs, oldest
    first. weight: (dim, width) or nn.Conv1d's (dim, 1, width). bias: (dim,) or None.
    Returns act(bias + sum_k weight[:, k] * window[:, :, k]) as (batch, dim) in x's dtype.
    """
    weight = weight.reshape(weight.shape[0], -1)
    conv_state.copy_(torch.cat((conv_state[:, :, 1:], x[:, :, None].to(conv_state.dtype)), dim=-1))
    out = (conv_state.float() * weight.float()).sum(dim=-1)
    if bias is not None:
        out = out + bias.float()
    if silu:
        out = F.silu(out)
    return out.to(x.dtype)


def selective_state_update_ref(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    a_is_log: bool = False,
    dt_proj_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """One step of the selective scan; ``state`` is updated in place. Per batch b, channel d, state n::

        dt    = dt @ dt_proj_weight.T  (only with dt_proj_weight: dt is then the low-rank input)
        dt    = softplus(dt + dt_bias) if dt_softplus else dt + dt_bias
        h     = exp(dt A[d, n]) h + dt B[b, n] x          (A = -exp(A) when a_is_log)
        y     = (sum_n C[b, n] h + D[d] x) * silu(z)

    state: (batch, dim, dstate) fp32. x, dt, z: (batch, dim). A: (dim, dstate). B, C: (batch, dstate).
    D, dt_bias: (dim,). dt_proj_weight: (dim, rank), dt then (batch, rank).
    Returns y (batch, dim) in x's dtype.
    """
    dt = dt.float()
    if dt_proj_weight is not None:
        dt = dt @ dt_proj_weight.float().T
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    A = -torch.exp(A.float()) if a_is_log else A.float()
    xf = x.float()
    decay = torch.exp(dt[:, :, None] * A)  # (batch, dim, dstate)
    state.copy_(decay * state + (dt * xf)[:, :, None] * B.float()[:, None, :])
    y = torch.einsum("bdn,bn->bd", state, C.float())
    if D is not None:
        y = y + D.float() * xf
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(x.dtype)
