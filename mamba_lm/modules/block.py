"""The residual block shared by every model: a mixer, optionally an MLP, each with a norm and residual add."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Pre-norm:  x = x + drop(mixer(norm(x)));  then, with an MLP, x = x + drop(mlp(norm2(x))).
    Post-norm: x = norm(x + drop(mixer(x)));   then, with an MLP, x = norm2(x + drop(mlp(x))).

    In the pre-norm form the residual add of a sublayer's output happens in the *next* norm, which adds
    and normalizes in one fused kernel: a block takes (hidden, residual), where hidden is the previous
    sublayer's (dropped-out) output not yet added, and returns the same pair. The model ends the stream
    with ``norm_f(hidden, residual)``. Parameter names (norm, mixer, norm2, mlp) are the reference
    implementation's.
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

    def forward(
        self, hidden: torch.Tensor, residual: torch.Tensor | None = None, **mixer_kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden: (batch, seqlen, d_model). mixer_kwargs (seq_idx, inference_params, ...) go to the mixer.

        Pre-norm: residual is the stream so far (None before the first block: then hidden is the stream,
        e.g. the embedding output, in the dtype the stream keeps, e.g. fp32). Returns (the last
        sublayer's output, the stream without it); the stream is fp32 whenever residual is.
        Post-norm: hidden is the stream and residual must be None; returns (the new stream, None).
        """
        if not self.prenorm:
            if residual is not None:
                raise ValueError("Block: a post-norm block takes the stream as hidden and no residual")
            x = self.dropout(self.mixer(hidden, **mixer_kwargs)).to(hidden.dtype)
            x = self.norm(x, hidden, out_dtype=hidden.dtype)  # the stream keeps its dtype
            if self.mlp is not None:
                x = self.norm2(self.dropout(self.mlp(x)).to(x.dtype), x, out_dtype=x.dtype)
            return x, None
        hidden, residual = self.norm(hidden, residual, prenorm=True)
        hidden = self.dropout(self.mixer(hidden, **mixer_kwargs))
        if self.mlp is not None:
            hidden, residual = self.norm2(hidden, residual, prenorm=True)
            hidden = self.dropout(self.mlp(hidden))
        return hidden, residual
