"""``conv_state_update`` and ``selective_state_update``: Mamba's one-token step, dispatching to the
Triton kernels (CUDA, or the CPU under ``TRITON_INTERPRET=1``) or to the PyTorch reference.

Both only read shapes on the host: no device synchronization, so they can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch

from ..dispatch import triton_runs_on
from .ref import conv_state_update_ref, selective_state_update_ref


def conv_state_update(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    silu: bool = True,
) -> torch.Tensor:
    """One step of Mamba's causal depthwise convolution; ``conv_state`` is updated in place.

    x: (batch, dim) the new input, any strides (e.g. a chunk of in_proj's output), fp32/fp16/bf16.
    conv_state: (batch, dim, width) the last ``width`` inputs, oldest first (width 2 to 4 in Mamba).
    weight: (dim, width) or nn.Conv1d's (dim, 1, width). bias: (dim,) or None.
    Returns silu(bias + sum_k weight[:, k] * new_window[:, :, k]) (without SiLU if ``silu=False``),
    (batch, dim) in x's dtype, accumulated in fp32.
    """
    weight = weight.reshape(weight.shape[0], -1)
    _check_conv_args(x, conv_state, weight, bias)
    if triton_runs_on(x):
        from .triton_step import conv_state_update_triton

        return conv_state_update_triton(
            x, conv_state, weight, bias.contiguous() if bias is not None else None, silu
        )
    return conv_state_update_ref(x, conv_state, weight, bias, silu)


def selective_state_update(
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
    """One step of the selective scan for a batch of rows; ``state`` is updated in place.

    Per batch b, channel d, state n, in fp32::

        dt = dt @ dt_proj_weight.T      (only with dt_proj_weight: Mamba's low-rank dt projection)
        dt = softplus(dt + dt_bias) if dt_softplus else dt + dt_bias
        h  = exp(dt A[d, n]) h + dt B[b, n] x             (A = -exp(A) when a_is_log: Mamba's A_log)
        y  = (sum_n C[b, n] h + D[d] x) * silu(z)

    Args:
        state: (batch, dim, dstate) fp32, updated in place.
        x, dt, z: (batch, dim), any strides, fp32/fp16/bf16.
        A: (dim, dstate) (or log(-A) with ``a_is_log``). B, C: (batch, dstate), any strides.
        D, dt_bias: (dim,), any float dtype.
        dt_proj_weight: (dim, rank); dt is then the projection's input (batch, rank), and the
            kernel computes the projection in fp32 (one launch fewer than a separate GEMM).
    Returns:
        y (batch, dim) in x's dtype.
    """
    _check_ssm_args(state, x, dt, A, B, C, D, z, dt_bias, dt_proj_weight)
    if triton_runs_on(x):
        from .triton_step import selective_state_update_triton

        D = D.contiguous() if D is not None else None
        dt_bias = dt_bias.contiguous() if dt_bias is not None else None
        return selective_state_update_triton(
            state, x, dt, A, B, C, D, z, dt_bias, dt_softplus, a_is_log, dt_proj_weight
        )
    return selective_state_update_ref(
        state, x, dt, A, B, C, D, z, dt_bias, dt_softplus, a_is_log, dt_proj_weight
    )


def _check_conv_args(x, conv_state, weight, bias) -> None:
    if x.dim() != 2:
        raise ValueError(f"conv_state_update: x must be (batch, dim), got {tuple(x.shape)}")
    batch, dim = x.shape
    if conv_state.dim() != 3 or conv_state.shape[:2] != (batch, dim):
        raise ValueError(
            f"conv_state_update: conv_state must be (batch={batch}, dim={dim}, width), "
            f"got {tuple(conv_state.shape)}"
        )
    width = conv_state.shape[2]
    if weight.shape != (dim, width):
        raise ValueError(
            f"conv_state_update: weight must be (dim={dim}, width={width}), got {tuple(weight.shape)}"
        )
    if bias is not None and bias.shape != (dim,):
        raise ValueError(f"conv_state_update: bias must be (dim={dim},), got {tuple(bias.shape)}")
    _check_devices("conv_state_update", x, conv_state=conv_state, weight=weight, bias=bias)


def _check_ssm_args(state, x, dt, A, B, C, D, z, dt_bias, dt_proj_weight) -> None:
    name = "selective_state_update"
    if state.dim() != 3:
        raise ValueError(f"{name}: state must be (batch, dim, dstate), got {tuple(state.shape)}")
    if state.dtype != torch.float32 and not (state.dtype == torch.float64 == x.dtype):
        raise ValueError(f"{name}: state must be float32, got {state.dtype}")
    batch, dim, dstate = state.shape
    rank = dt_proj_weight.shape[-1] if dt_proj_weight is not None else None
    expected = {
        "x": (x, (batch, dim)),
        "dt": (dt, (batch, dim) if rank is None else (batch, rank)),
        "dt_proj_weight": (dt_proj_weight, (dim, rank)),
        "A": (A, (dim, dstate)),
        "B": (B, (batch, dstate)),
        "C": (C, (batch, dstate)),
        "D": (D, (dim,)),
        "z": (z, (batch, dim)),
        "dt_bias": (dt_bias, (dim,)),
    }
    for arg, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(
                f"{name}: {arg} must have shape {shape} for state {tuple(state.shape)}, "
                f"got {tuple(tensor.shape)}"
            )
    _check_devices(
        name, state, x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias, dt_proj_weight=dt_proj_weight
    )


def _check_devices(name: str, first: torch.Tensor, **others: torch.Tensor | None) -> None:
    for arg, tensor in others.items():
        if tensor is not None and tensor.device != first.device:
            raise ValueError(f"{name}: {arg} is on {tensor.device}, expected {first.device}")
