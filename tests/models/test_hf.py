"""Hugging Face interop: logits agree with transformers' own MambaForCausalLM and LlamaForCausalLM."""

from __future__ import annotations

import pytest
import torch
import transformers
from model_testing import VOCAB, relative_error, tiny_config

from mamba_lm import MambaConfig, MambaLMHeadModel, TransformerLMHeadModel, build_model
from mamba_lm.hf import from_hf, to_hf


@pytest.mark.parametrize("kind", ["mamba", "transformer"])
def test_to_hf_and_back(kind):
    model = build_model(tiny_config(kind))
    ids = torch.randint(0, VOCAB, (2, 11))
    ours = model(ids).logits
    hf_model = to_hf(model)
    expected_cls = transformers.MambaForCausalLM if kind == "mamba" else transformers.LlamaForCausalLM
    assert type(hf_model) is expected_cls
    assert hf_model.config.vocab_size == model.config.padded_vocab_size
    assert hf_model.config.tie_word_embeddings
    assert relative_error(hf_model(ids).logits, ours) <= 1e-4
    back = from_hf(hf_model)
    assert type(back) is type(model)
    assert relative_error(back(ids).logits, ours) <= 1e-4
    back_from_parts = from_hf(hf_model.config, hf_model.state_dict())
    assert relative_error(back_from_parts(ids).logits, ours) <= 1e-4


def test_hf_mamba_conventions():
    config = MambaConfig(d_model=40, n_layer=2, vocab_size=70, d_state=4, norm_epsilon=1e-6, dt_rank=5)
    hf_config = to_hf(MambaLMHeadModel(config)).config
    assert (hf_config.hidden_size, hf_config.state_size, hf_config.intermediate_size) == (40, 4, 80)
    assert (hf_config.time_step_rank, hf_config.conv_kernel, hf_config.layer_norm_epsilon) == (5, 4, 1e-6)
    assert hf_config.vocab_size == 72 and hf_config.residual_in_fp32


def test_from_a_transformers_built_mamba():
    """The reverse direction on a model transformers built and initialized itself."""
    hf_config = transformers.MambaConfig(
        vocab_size=64,
        hidden_size=24,
        state_size=4,
        num_hidden_layers=2,
        time_step_rank=3,
        layer_norm_epsilon=1e-5,
    )
    hf_model = transformers.MambaForCausalLM(hf_config).eval()
    with torch.no_grad():  # make the norms and D non-trivial
        for name, p in hf_model.named_parameters():
            if name.endswith(("norm.weight", "norm_f.weight", ".D")):
                p.add_(0.3 * torch.randn_like(p))
    ids = torch.randint(0, 64, (2, 9))
    ours = from_hf(hf_model)
    assert isinstance(ours, MambaLMHeadModel)
    assert relative_error(ours(ids).logits, hf_model(ids).logits) <= 1e-4
    greedy_hf = hf_model.generate(ids[:, :3], max_new_tokens=5, do_sample=False)
    assert torch.equal(ours.generate(ids[:, :3], max_new_tokens=5, top_k=1), greedy_hf)


@pytest.mark.parametrize("tie", [True, False])
def test_from_a_transformers_built_llama(tie):
    hf_config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tie,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
    )
    hf_model = transformers.LlamaForCausalLM(hf_config).eval()
    with torch.no_grad():
        for name, p in hf_model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    ids = torch.randint(0, 64, (2, 10))
    ours = from_hf(hf_model)
    assert isinstance(ours, TransformerLMHeadModel)
    assert ours.config.rope_theta == 500.0 and ours.config.mlp_hidden_dim == 48
    assert relative_error(ours(ids).logits, hf_model(ids).logits) <= 1e-4
    assert (ours.lm_head.weight is ours.backbone.embedding.weight) == tie


def test_unconvertible_models_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="S4D"):
        to_hf(build_model(tiny_config("s4d")))
    with pytest.raises(ValueError, match="MambaS4D"):
        to_hf(build_model(tiny_config("mamba_s4d")))
    gqa = transformers.LlamaConfig(
        vocab_size=16,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    with pytest.raises(ValueError, match="grouped-query"):
        from_hf(transformers.LlamaForCausalLM(gqa))
    with pytest.raises(ValueError, match="state_dict"):
        from_hf(gqa)
    with pytest.raises(TypeError, match="transformers model or config"):
        from_hf({"weights": 1})
