"""``MambaLMHeadModel``: the Mamba language model (or an S4D one, via ``ssm_cfg={"layer": "S4D"}``)."""

from __future__ import annotations

from ..config import MambaConfig
from ..modules.block import Block
from ..modules.mixers import build_mixer
from ..modules.norm import make_norm
from .backbone import MixerModel
from .lm import LMHeadModel


class MambaLMHeadModel(LMHeadModel):
    """embedding -> n_layer x (norm -> Mamba/S4D mixer -> residual add) -> norm_f -> tied LM head.

    state_dict keys are the reference implementation's (mamba_ssm): backbone.embedding.weight,
    backbone.layers.{i}.norm.weight, backbone.layers.{i}.mixer.*, backbone.norm_f.weight, lm_head.weight.
    """

    def __init__(self, config: MambaConfig, device=None, dtype=None):
        if not isinstance(config, MambaConfig):
            raise TypeError(f"MambaLMHeadModel needs a MambaConfig, got {type(config).__name__}")
        norm_kind = "rms" if config.rms_norm else "layer"
        mixer_options = config.mixer_kwargs()

        def make_block(layer_idx: int) -> Block:
            mixer = build_mixer(config.layer, config.d_model, layer_idx, device, dtype, **mixer_options)
            return Block(mixer, make_norm(norm_kind, config.d_model, config.norm_epsilon, device, dtype))

        backbone = MixerModel(
            config.d_model,
            config.n_layer,
            config.padded_vocab_size,
            make_block,
            make_norm(norm_kind, config.d_model, config.norm_epsilon, device, dtype),
            residual_in_fp32=config.residual_in_fp32,
            device=device,
            dtype=dtype,
        )
        super().__init__(config, backbone, n_residuals_per_layer=1, device=device, dtype=dtype)
