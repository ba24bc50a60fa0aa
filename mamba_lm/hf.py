"""Hugging Face interop: ``to_hf(model)`` and ``from_hf(hf_model)`` (or ``from_hf(hf_config, state_dict)``).

Mamba <-> ``transformers.MambaForCausalLM``: identical parameters; only the embedding is renamed
(``backbone.embedding`` here and in mamba_ssm, ``backbone.embeddings`` in transformers). HF's vocab_size is
our padded vocabulary (the embedding's rows).

Transformer++ <-> ``transformers.LlamaForCausalLM``: our fused q/k/v projection splits into q_proj, k_proj,
v_proj; the SwiGLU fc1 (value rows, then gate rows) into up_proj and gate_proj. RoPE uses the same
rotate-half layout, so no permutation is needed.
"""

from __future__ import annotations

import torch
import transformers

from .config import MambaConfig, TransformerConfig
from .models.lm import LMHeadModel
from .models.mamba_lm import MambaLMHeadModel
from .models.transformer_lm import TransformerLMHeadModel

StateDict = dict[str, torch.Tensor]


def to_hf(model: LMHeadModel) -> transformers.PreTrainedModel:
    """The equivalent transformers model (eval mode, same dtype and device): MambaForCausalLM for a Mamba LM,
    LlamaForCausalLM for a Transformer++ LM."""
    if isinstance(model, MambaLMHeadModel):
        hf_config, cls = _mamba_hf_config(model.config), transformers.MambaForCausalLM
        state_dict = _mamba_to_hf_keys(model.state_dict())
    elif isinstance(model, TransformerLMHeadModel):
        hf_config, cls = _llama_hf_config(model.config), transformers.LlamaForCausalLM
        state_dict = _transformer_to_llama_keys(model.state_dict(), model.config)
    else:
        raise TypeError(
            f"to_hf converts MambaLMHeadModel or TransformerLMHeadModel, got {type(model).__name__}"
        )
    weight = model.lm_head.weight
    hf_model = cls(hf_config).to(device=weight.device, dtype=weight.dtype)
    hf_model.load_state_dict(state_dict, strict=True)
    return hf_model.eval()


def from_hf(
    hf_model_or_config: transformers.PreTrainedModel | transformers.PretrainedConfig,
    state_dict: StateDict | None = None,
) -> LMHeadModel:
    """Our model from a transformers MambaForCausalLM / LlamaForCausalLM, or from its config plus a
    state_dict in transformers' key layout. Returns a MambaLMHeadModel or TransformerLMHeadModel."""
    if isinstance(hf_model_or_config, transformers.PreTrainedModel):
        hf_config = hf_model_or_config.config
        state_dict = hf_model_or_config.state_dict() if state_dict is None else state_dict
    elif isinstance(hf_model_or_config, transformers.PretrainedConfig):
        hf_config = hf_model_or_config
        if state_dict is None:
            raise ValueError("from_hf: given a config, pass the weights too: from_hf(hf_config, state_dict)")
    else:
        raise TypeError(
            f"from_hf takes a transformers model or config, got {type(hf_model_or_config).__name__}"
        )

    if hf_config.model_type == "mamba":
        config = _mamba_config_from_hf(hf_config)
        ours = _mamba_from_hf_keys(state_dict, config)
        model: LMHeadModel = MambaLMHeadModel(config)
    elif hf_config.model_type == "llama":
        config = _transformer_config_from_llama(hf_config)
        ours = _llama_to_transformer_keys(state_dict, config)
        model = TransformerLMHeadModel(config)
    else:
        raise ValueError(f"from_hf converts model_type 'mamba' or 'llama', got {hf_config.model_type!r}")
    first = next(iter(state_dict.values()))
    model = model.to(device=first.device, dtype=first.dtype)
    model.load_state_dict(ours, strict=True)
    return model


# ---- Mamba ----------------------------------------------------------------------------------------------


def _mamba_hf_config(config: MambaConfig) -> transformers.MambaConfig:
    if config.layer != "Mamba1":
        raise ValueError(f"to_hf: transformers has no {config.layer} LM; only Mamba1 mixers convert")
    if not config.rms_norm:
        raise ValueError("to_hf: transformers' Mamba uses RMSNorm; this model has LayerNorm (rms_norm=False)")
    return transformers.MambaConfig(
        vocab_size=config.padded_vocab_size,
        hidden_size=config.d_model,
        state_size=config.d_state,
        num_hidden_layers=config.n_layer,
        layer_norm_epsilon=config.norm_epsilon,
        expand=config.expand,
        conv_kernel=config.d_conv,
        use_bias=config.bias,
        use_conv_bias=config.conv_bias,
        hidden_act="silu",
        residual_in_fp32=config.residual_in_fp32,
        time_step_rank=config.resolved_dt_rank,
        time_step_scale=config.dt_scale,
        time_step_min=config.dt_min,
        time_step_max=config.dt_max,
        time_step_init_scheme=config.dt_init,
        time_step_floor=config.dt_init_floor,
        # An init-only option, but transformers' Mamba applies it on every load too (it divides the loaded
        # out_proj.weight by sqrt(n_layer)): an exported model's weights are final, so it must be off.
        rescale_prenorm_residual=False,
        tie_word_embeddings=config.tie_embeddings,
    )


def _mamba_config_from_hf(hf: transformers.MambaConfig) -> MambaConfig:
    if hf.hidden_act != "silu":
        raise ValueError(f"from_hf: Mamba with hidden_act={hf.hidden_act!r} is not supported (only silu)")
    if hf.intermediate_size != hf.expand * hf.hidden_size:
        raise ValueError(f"from_hf: intermediate_size {hf.intermediate_size} != expand * hidden_size")
    return MambaConfig(
        d_model=hf.hidden_size,
        n_layer=hf.num_hidden_layers,
        vocab_size=hf.vocab_size,
        d_state=hf.state_size,
        expand=hf.expand,
        d_conv=hf.conv_kernel,
        dt_rank=int(hf.time_step_rank),
        dt_min=hf.time_step_min,
        dt_max=hf.time_step_max,
        dt_init=hf.time_step_init_scheme,
        dt_scale=hf.time_step_scale,
        dt_init_floor=hf.time_step_floor,
        conv_bias=hf.use_conv_bias,
        bias=hf.use_bias,
        rms_norm=True,
        norm_epsilon=hf.layer_norm_epsilon,
        residual_in_fp32=hf.residual_in_fp32,
        pad_vocab_size_multiple=1,  # HF's vocab_size is already the embedding's row count
        tie_embeddings=hf.tie_word_embeddings,
        rescale_prenorm_residual=hf.rescale_prenorm_residual,
    )


def _mamba_to_hf_keys(state_dict: StateDict) -> StateDict:
    return {k.replace("backbone.embedding.", "backbone.embeddings."): v for k, v in state_dict.items()}


def _mamba_from_hf_keys(state_dict: StateDict, config: MambaConfig) -> StateDict:
    ours = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in state_dict.items()}
    if config.tie_embeddings:
        ours.setdefault("lm_head.weight", ours["backbone.embedding.weight"])
    return ours


# ---- Transformer++ <-> Llama ----------------------------------------------------------------------------


def _llama_hf_config(config: TransformerConfig) -> transformers.LlamaConfig:
    return transformers.LlamaConfig(
        vocab_size=config.padded_vocab_size,
        hidden_size=config.d_model,
        intermediate_size=config.mlp_hidden_dim,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_head,
        head_dim=config.d_model // config.n_head,
        hidden_act="silu",
        rms_norm_eps=config.norm_epsilon,
        tie_word_embeddings=config.tie_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        attention_bias=False,
        mlp_bias=False,
    )


def _transformer_config_from_llama(hf: transformers.LlamaConfig) -> TransformerConfig:
    n_head = hf.num_attention_heads
    problems = []
    if hf.num_key_value_heads != n_head:
        problems.append(f"grouped-query attention (num_key_value_heads={hf.num_key_value_heads} != {n_head})")
    if hf.head_dim != hf.hidden_size // n_head:
        problems.append(f"head_dim={hf.head_dim} != hidden_size / num_attention_heads")
    if hf.attention_bias or hf.mlp_bias:
        problems.append("biases (attention_bias / mlp_bias)")
    if hf.hidden_act != "silu":
        problems.append(f"hidden_act={hf.hidden_act!r}")
    rope = hf.rope_parameters or {}
    if rope.get("rope_type", "default") != "default":
        problems.append(f"rope_type={rope.get('rope_type')!r} (only the default RoPE)")
    if problems:
        raise ValueError("from_hf: this Llama is not a Transformer++ here: " + "; ".join(problems))
    return TransformerConfig(
        d_model=hf.hidden_size,
        n_layer=hf.num_hidden_layers,
        n_head=n_head,
        vocab_size=hf.vocab_size,
        d_intermediate=hf.intermediate_size,
        rope_theta=float(rope.get("rope_theta", 10000.0)),
        norm_epsilon=hf.rms_norm_eps,
        pad_vocab_size_multiple=1,
        tie_embeddings=hf.tie_word_embeddings,
        initializer_range=hf.initializer_range,
    )


def _layer_key_pairs(config: TransformerConfig) -> list[tuple[str, str]]:
    """(our key, Llama key) for every one-to-one parameter."""
    pairs = [
        ("backbone.embedding.weight", "model.embed_tokens.weight"),
        ("backbone.norm_f.weight", "model.norm.weight"),
    ]
    pairs.append(("lm_head.weight", "lm_head.weight"))
    for i in range(config.n_layer):
        ours, theirs = f"backbone.layers.{i}.", f"model.layers.{i}."
        pairs += [
            (ours + "norm.weight", theirs + "input_layernorm.weight"),
            (ours + "mixer.out_proj.weight", theirs + "self_attn.o_proj.weight"),
            (ours + "norm2.weight", theirs + "post_attention_layernorm.weight"),
            (ours + "mlp.fc2.weight", theirs + "mlp.down_proj.weight"),
        ]
    return pairs


def _transformer_to_llama_keys(state_dict: StateDict, config: TransformerConfig) -> StateDict:
    hf = {theirs: state_dict[ours] for ours, theirs in _layer_key_pairs(config)}
    for i in range(config.n_layer):
        ours, theirs = f"backbone.layers.{i}.", f"model.layers.{i}."
        q, k, v = state_dict[ours + "mixer.in_proj.weight"].chunk(3, dim=0)
        hf.update({theirs + "self_attn.q_proj.weight": q, theirs + "self_attn.k_proj.weight": k})
        hf[theirs + "self_attn.v_proj.weight"] = v
        up, gate = state_dict[ours + "mlp.fc1.weight"].chunk(2, dim=0)
        hf.update({theirs + "mlp.up_proj.weight": up, theirs + "mlp.gate_proj.weight": gate})
    return hf


def _llama_to_transformer_keys(state_dict: StateDict, config: TransformerConfig) -> StateDict:
    state_dict = dict(state_dict)
    if config.tie_embeddings:
        state_dict.setdefault("lm_head.weight", state_dict["model.embed_tokens.weight"])
    missing = sorted({theirs for _, theirs in _layer_key_pairs(config)} - set(state_dict))
    if missing:
        raise ValueError(
            f"from_hf: the Llama state_dict lacks {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    ours = {our_key: state_dict[theirs] for our_key, theirs in _layer_key_pairs(config)}
    for i in range(config.n_layer):
        mine, theirs = f"backbone.layers.{i}.", f"model.layers.{i}."
        attn = [state_dict[f"{theirs}self_attn.{p}_proj.weight"] for p in ("q", "k", "v")]
        ours[mine + "mixer.in_proj.weight"] = torch.cat(attn, dim=0)
        mlp = [state_dict[f"{theirs}mlp.{p}_proj.weight"] for p in ("up", "gate")]
        ours[mine + "mlp.fc1.weight"] = torch.cat(mlp, dim=0)
    return ours


__all__ = ["from_hf", "to_hf"]
