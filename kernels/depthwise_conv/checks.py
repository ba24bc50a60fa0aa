"""Validation and normalisation of the causal-convolution arguments, shared by every implementation."""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
ACTIVATIONS = (None, "silu", "swish")  # "swish" is another name for SiLU
MIN_WIDTH, MAX_WIDTH = 2, 4


def _shape(t) -> tuple[int, ...] | str:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def check_conv_args(x, weight, bias, seq_idx, activation, initial_states) -> None:
    """Raise ValueError naming the argument, its shape or dtype, and what was expected."""

    def fail(msg: str) -> None:
        raise ValueError(f"causal_conv1d: {msg}")

    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        fail(f"x must be a (batch, dim, seqlen) tensor, got {_shape(x)}")
    batch, dim, seqlen = x.shape
    if x.dtype not in FLOAT_DTYPES:
        fail(f"x must be a floating tensor (fp32, fp16 or bf16), got {x.dtype}")
    if not isinstance(weight, torch.Tensor):
        fail(f"weight must be a (dim, width) tensor, got {_shape(weight)}")
    if weight.dim() == 3 and weight.shape[1] == 1:
        width = weight.shape[2]
    elif weight.dim() == 2:
        width = weight.shape[1]
    else:
        fail(f"weight must be (dim, width) or nn.Conv1d's (dim, 1, width), got {_shape(weight)}")
    if weight.shape[0] != dim:
        fail(
            f"weight must have dim={dim} rows (x is (batch, dim, seqlen) = {_shape(x)}), got {_shape(weight)}"
        )
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        fail(f"weight width must be {MIN_WIDTH} to {MAX_WIDTH}, got {width} (weight {_shape(weight)})")
    if weight.dtype not in FLOAT_DTYPES:
        fail(f"weight must be a floating tensor, got {weight.dtype}")
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or _shape(bias) != (dim,):
            fail(f"bias must be (dim,) = ({dim},), got {_shape(bias)}")
        if bias.dtype not in FLOAT_DTYPES:
            fail(f"bias must be a floating tensor, got {bias.dtype}")
    if activation not in ACTIVATIONS:
        fail(f"activation must be None or 'silu' (or 'swish'), got {activation!r}")
    if seq_idx is not None:
        if not isinstance(seq_idx, torch.Tensor) or _shape(seq_idx) != (batch, seqlen):
            fail(f"seq_idx must be (batch, seqlen) = {(batch, seqlen)}, got {_shape(seq_idx)}")
        if seq_idx.dtype.is_floating_point or seq_idx.dtype.is_complex or seq_idx.dtype == torch.bool:
            fail(f"seq_idx must be an integer tensor (int32), got {seq_idx.dtype}")
    if initial_states is not None:
        if not isinstance(initial_states, torch.Tensor) or _shape(initial_states) != (batch, dim, width - 1):
            fail(
                f"initial_states must be (batch, dim, width - 1) = {(batch, dim, width - 1)}, "
                f"got {_shape(initial_states)}"
            )
        if initial_states.dtype not in FLOAT_DTYPES:
            fail(f"initial_states must be a floating tensor, got {initial_states.dtype}")
    tensors = (x, weight, bias, seq_idx, initial_states)
    devices = {t.device for t in tensors if t is not None}
    if len(devices) > 1:
        fail(f"all tensors must be on one device, got {sorted(map(str, devices))}")


def weight_2d(weight: torch.Tensor) -> torch.Tensor:
    """(dim, width) view of a (dim, width) or (dim, 1, width) weight."""
    return weight.reshape(weight.shape[0], weight.shape[-1])


def is_channel_last(x: torch.Tensor) -> bool:
    """Whether (batch, dim, seqlen) x is a view of (batch, seqlen, dim) memory (channels adjacent)."""
    return x.stride(1) == 1 and x.shape[1] > 1


def empty_like_layout(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An empty (batch, dim, seqlen) tensor of x's layout kind: a (batch, dim, seqlen) view of
    (batch, seqlen, dim) memory when x is channel-last, else contiguous (batch, dim, seqlen)."""
    batch, dim, seqlen = x.shape
    dtype = dtype or x.dtype
    if is_channel_last(x):
        return torch.empty(batch, seqlen, dim, dtype=dtype, device=x.device).transpose(1, 2)
    return torch.empty(batch, dim, seqlen, dtype=dtype, device=x.device)
