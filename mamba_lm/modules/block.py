"""The residual block shared by every model: a mixer, optionally an MLP, each with a norm and residual add."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Pre-norm:  x = x + drop(mixer(norm(x)));  then, with an MLP, x = x + drop(mlp(norm2(x))).
    Post-norm: x = norm(x + drop(mixer(x)));   then, with an MLP, x = norm2(x + drop(mlp(x))).

    Parameter names (norm, mixer, norm2, mlp) are the reference implementation's.
    """

    def __init__(
        self,
        mixer: nn.Module,
        norm: nn.Module,
        mlp: nn.Module | None = None,
        norm2: nn.Module | None = None,
        prenorm: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if (mlp is None) != (norm2 is None):
            raise ValueError("Block: an MLP needs its own norm (norm2), and norm2 is only for an MLP")
        self.norm, self.mixer = norm, mixer
        if mlp is not None:
            self.norm2, self.mlp = norm2, mlp
        else:
            self.norm2 = self.mlp = None
        self.prenorm = prenorm
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, **mixer_kwargs) -> torch.Tensor:
        """x: (batch, seqlen, d_model), the residual stream (kept in its dtype, e.g. fp32).
        mixer_kwargs (seq_idx, inference_params, ...) go to the mixer. Returns the new residual stream."""
        x = self._sublayer(x, self.norm, lambda h: self.mixer(h, **mixer_kwargs))
        if self.mlp is not None:
            x = self._sublayer(x, self.norm2, self.mlp)
        return x

    def _sublayer(self, x: torch.Tensor, norm: nn.Module, fn) -> torch.Tensor:
        if self.prenorm:
            return x + self.dropout(fn(norm(x)))
        return norm(x + self.dropout(fn(x)).to(x.dtype))
