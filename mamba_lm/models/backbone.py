"""The language-model trunk shared by Mamba, S4D and Transformer++: embedding, residual blocks, final norm,
and the reference implementation's weight initialization."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..modules.block import Block


class MixerModel(nn.Module):
    """embedding -> n_layer Blocks on a residual stream -> norm_f. Parameter names: the reference's."""

    def __init__(
        self,
        d_model: int,
        n_layer: int,
        vocab_size: int,
        make_block: Callable[[int], Block],
        norm_f: nn.Module,
        residual_in_fp32: bool = True,
        device=None,
        dtype=None,
    ):
        """vocab_size: rows of the embedding (already padded). make_block(layer_idx) builds block i."""
        super().__init__()
        self.residual_in_fp32 = residual_in_fp32
        self.embedding = nn.Embedding(vocab_size, d_model, device=device, dtype=dtype)
        self.layers = nn.ModuleList(make_block(i) for i in range(n_layer))
        self.norm_f = norm_f

    def forward(self, input_ids: torch.Tensor, seq_idx: torch.Tensor | None = None, inference_params=None):
        """input_ids: (batch, seqlen) int64. Returns the normed hidden states (batch, seqlen, d_model), in
        autocast's dtype when autocast is on, else the norm's weight dtype.

        The residual stream (fp32 with ``residual_in_fp32``) is added to in each next norm, the last
        block's output in norm_f (see ``Block``)."""
        hidden = self.embedding(input_ids)
        if self.residual_in_fp32:
            hidden = hidden.float()  # the stream starts as the embedding output
        residual = None
        for layer in self.layers:
            hidden, residual = layer(hidden, residual, seq_idx=seq_idx, inference_params=inference_params)
        return self.norm_f(hidden, residual)


def init_weights(
    module: nn.Module,
    n_layer: int,
    initializer_range: float = 0.02,
    rescale_prenorm_residual: bool = True,
    n_residuals_per_layer: int = 1,
) -> None:
    """mamba_ssm's ``_init_weights``, applied with ``model.apply``: linear biases to zero (unless marked
    ``_no_reinit``), embeddings normal(0, initializer_range), and the projections that write into the
    residual stream (out_proj, fc2, matched by their name relative to the parent) re-drawn with PyTorch's
    default and scaled by 1/sqrt(n_residuals_per_layer * n_layer)."""
    if isinstance(module, nn.Linear):
        if module.bias is not None and not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=initializer_range)
    if rescale_prenorm_residual:
        for name, p in module.named_parameters():
            if name in ("out_proj.weight", "fc2.weight"):
                nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                with torch.no_grad():
                    p /= math.sqrt(n_residuals_per_layer * n_layer)
