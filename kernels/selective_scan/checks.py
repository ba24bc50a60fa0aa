"""Validation of the selective-scan arguments, shared by every implementation."""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state, seq_idx) -> None:
    """Raise ValueError naming the argument, its shape or dtype, and what was expected."""

    def fail(msg: str) -> None:
        raise ValueError(f"selective_scan: {msg}")

    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        fail(f"u must be a (batch, dim, seqlen) tensor, got {getattr(u, 'shape', type(u))}")
    batch, dim, seqlen = u.shape
    if u.dtype not in FLOAT_DTYPES:
        fail(f"u must be a floating tensor (fp32, fp16 or bf16), got {u.dtype}")
    if _shape(delta) != _shape(u):
        fail(f"delta must have u's shape {_shape(u)}, got {_shape(delta)}")
    if delta.dtype != u.dtype:
        fail(f"delta must have u's dtype {u.dtype}, got {delta.dtype}")
    if A.dim() != 2 or A.shape[0] != dim:
        fail(f"A must be (dim={dim}, dstate), got {_shape(A)}")
    if A.is_complex():
        fail("A must be real; complex A is not supported")
    dstate = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.dim() == 3:
            if _shape(t) != (batch, dstate, seqlen):
                fail(f"{name} must be (batch, dstate, seqlen) = {(batch, dstate, seqlen)}, got {_shape(t)}")
        elif t.dim() == 4:
            groups = t.shape[1]
            if _shape(t) != (batch, groups, dstate, seqlen):
                fail(f"{name} must be (batch, groups, dstate, seqlen), got {_shape(t)} (dstate={dstate})")
            if groups == 0 or dim % groups != 0:
                fail(f"{name}: dim={dim} must be divisible by groups={groups}")
        else:
            fail(
                f"{name} must be (batch, dstate, seqlen) or (batch, groups, dstate, seqlen), got {_shape(t)}"
            )
        if t.dtype not in FLOAT_DTYPES:
            fail(f"{name} must be a floating tensor, got {t.dtype}")
    if B.dim() == 4 and C.dim() == 4 and B.shape[1] != C.shape[1]:
        fail(f"B and C must have the same number of groups, got {B.shape[1]} and {C.shape[1]}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and _shape(t) != (dim,):
            fail(f"{name} must be (dim,) = ({dim},), got {_shape(t)}")
    if z is not None and (_shape(z) != _shape(u) or z.dtype != u.dtype):
        fail(f"z must match u: shape {_shape(u)} dtype {u.dtype}, got {_shape(z)} {z.dtype}")
    if initial_state is not None and _shape(initial_state) != (batch, dim, dstate):
        fail(
            f"initial_state must be {(batch, dim, dstate)} (batch, dim, dstate), got {_shape(initial_state)}"
        )
    if seq_idx is not None:
        if _shape(seq_idx) != (batch, seqlen):
            fail(f"seq_idx must be (batch, seqlen) = {(batch, seqlen)}, got {_shape(seq_idx)}")
        if seq_idx.dtype.is_floating_point or seq_idx.dtype == torch.bool:
            fail(f"seq_idx must be an integer tensor, got {seq_idx.dtype}")
    devices = {
        t.device for t in (u, delta, A, B, C, D, z, delta_bias, initial_state, seq_idx) if t is not None
    }
    if len(devices) > 1:
        fail(f"all tensors must be on one device, got {sorted(map(str, devices))}")
