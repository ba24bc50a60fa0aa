"""``TransformerLMHeadModel``: the Transformer++ baseline (RoPE, SwiGLU, RMSNorm, no biases, tied LM head)."""

from __future__ import annotations

from ..config import TransformerConfig
from ..modules.block import Block
from ..modules.mixers import build_mixer
from ..modules.mlp import GatedMLP
from ..modules.norm import RMSNorm
from .backbone import MixerModel
from .lm import LMHeadModel


class TransformerLMHeadModel(LMHeadModel):
    """embedding -> n_layer x (RMSNorm, attention, add; RMSNorm, SwiGLU MLP, add) -> norm_f -> LM head.

    state_dict keys: backbone.layers.{i}.{norm, mixer.in_proj (q; k; v rows), mixer.out_proj, norm2,
    mlp.fc1 (value; gate rows), mlp.fc2}, as the reference implementation's attention blocks.
    """

    def __init__(self, config: TransformerConfig, device=None, dtype=None):
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"TransformerLMHeadModel needs a TransformerConfig, got {type(config).__name__}")
        d, eps = config.d_model, config.norm_epsilon

        def make_block(layer_idx: int) -> Block:
            attention = build_mixer(
                "MHA", d, layer_idx, device, dtype, n_head=config.n_head, rope_theta=config.rope_theta
            )
            return Block(
                attention,
                RMSNorm(d, eps, device, dtype),
                mlp=GatedMLP(d, config.mlp_hidden_dim, device=device, dtype=dtype),
                norm2=RMSNorm(d, eps, device, dtype),
            )

        backbone = MixerModel(
            d,
            config.n_layer,
            config.padded_vocab_size,
            make_block,
            RMSNorm(d, eps, device, dtype),
            residual_in_fp32=config.residual_in_fp32,
            device=device,
            dtype=dtype,
        )
        super().__init__(config, backbone, n_residuals_per_layer=2, device=device, dtype=dtype)
