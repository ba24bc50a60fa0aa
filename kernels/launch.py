"""Arguments of Triton kernel launches, passed by name.

Every launch in this package names each argument, ``kernel[grid](x_ptr=x, stride_xb=..., BLOCK_D=...)``,
so that a change in the order of a kernel's parameters cannot swap two arguments
(tests/kernels/test_launch_keywords.py checks every launch). Two helpers keep the launches short:

- ``strides(x, "stride_xb", "stride_xd", ...)``: a tensor's strides as keyword arguments;
- ``optional_ptr(x, stand_in)``: the tensor for a pointer parameter whose input may be absent.

Absent inputs: Triton needs a tensor for every pointer parameter, even one whose loads a constexpr
flag (HAS_D, HAS_Z, HAS_BIAS, ...) compiles out. For an absent input the launch passes a stand-in
that the kernel never reads: a tensor the launch passes anyway (no allocation), whose strides, when
the kernel takes any, are passed with it or as zeros.
"""

from __future__ import annotations

import torch


def optional_ptr(x: torch.Tensor | None, stand_in: torch.Tensor) -> torch.Tensor:
    """x, or ``stand_in`` when x is None: the kernel then never reads the pointer (its HAS_* flag,
    passed by the same launch, is False)."""
    return x if x is not None else stand_in


def strides(x: torch.Tensor | None, *names: str) -> dict[str, int]:
    """``{names[i]: x.stride(i)}``: keyword arguments of a launch, one name per dimension of x; all
    0 when x is None (an absent input, whose pointer the kernel never reads)."""
    if x is None:
        return dict.fromkeys(names, 0)
    if len(names) != x.dim():
        raise ValueError(f"{len(names)} stride names {names} for a tensor of {x.dim()} dimensions")
    return dict(zip(names, x.stride()))
