"""Hugging Face export through files: ``to_hf(model).save_pretrained(d)`` then transformers'
``AutoModelForCausalLM.from_pretrained(d)`` gives the same logits, and ``from_hf`` of the loaded model
gives our model back. (transformers runs parts of its weight init on load: an exported config must not
ask it to rescale weights that are already trained.)"""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from mamba_lm import MambaConfig, TransformerConfig, build_model
from mamba_lm.hf import from_hf, to_hf

VOCAB = 50


def _trained_looking(kind: str, n_layer: int = 4, tie: bool = True):
    """A tiny model whose every parameter is perturbed, so no weight equals its init."""
    if kind == "mamba":
        config = MambaConfig(d_model=32, n_layer=n_layer, vocab_size=VOCAB, d_state=8, tie_embeddings=tie)
    else:
        config = TransformerConfig(
            d_model=32, n_layer=n_layer, n_head=4, vocab_size=VOCAB, tie_embeddings=tie
        )
    model = build_model(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("kind", ["mamba", "transformer"])
def test_save_pretrained_then_auto_model_loads_the_same_logits(kind, tie, tmp_path):
    torch.manual_seed(0)
    model = _trained_looking(kind, tie=tie)
    ids = torch.randint(0, VOCAB, (2, 13))
    with torch.no_grad():
        ours = model(ids).logits

    to_hf(model).save_pretrained(tmp_path)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    expected_cls = transformers.MambaForCausalLM if kind == "mamba" else transformers.LlamaForCausalLM
    assert type(loaded) is expected_cls
    with torch.no_grad():
        theirs = loaded(ids).logits
        assert _max_abs_diff(theirs, ours) <= 1e-4

        back = from_hf(loaded).eval()
        assert type(back) is type(model)
        assert _max_abs_diff(back(ids).logits, ours) <= 1e-4
    for name, p in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], p), name


def test_exported_mamba_config_asks_for_no_rescaling_on_load(tmp_path):
    model = _trained_looking("mamba")
    assert model.config.rescale_prenorm_residual  # the training-time default stays as it is
    to_hf(model).save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["rescale_prenorm_residual"] is False
    out_proj = "backbone.layers.0.mixer.out_proj.weight"
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(loaded.state_dict()[out_proj], model.state_dict()[out_proj])
