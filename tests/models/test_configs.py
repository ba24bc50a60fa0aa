"""Named sizes, parameter counts, config round trips and build_model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mamba_lm import (
    ClassifierConfig,
    MambaConfig,
    MambaLMHeadModel,
    SequenceClassifier,
    TransformerConfig,
    TransformerLMHeadModel,
    build_model,
    configs,
)

PAPER_SIZES = {
    "mamba_130m": (24, 768),
    "mamba_370m": (48, 1024),
    "mamba_790m": (48, 1536),
    "mamba_1.4b": (48, 2048),
    "transformer_125m": (12, 768),
    "transformer_350m": (24, 1024),
    "transformer_760m": (24, 1536),
    "transformer_1.3b": (24, 2048),
}


def test_registry_has_the_paper_sizes_and_small_ones():
    assert set(PAPER_SIZES) | {"mamba_small", "transformer_small", "s4d_small"} <= set(configs.names())
    for name, (n_layer, d_model) in PAPER_SIZES.items():
        config = configs.get(name)
        assert (config.n_layer, config.d_model, config.vocab_size) == (n_layer, d_model, 50277)
    heads = {name: configs.get(name).n_head for name in PAPER_SIZES if name.startswith("transformer")}
    assert heads == {
        "transformer_125m": 12,
        "transformer_350m": 16,
        "transformer_760m": 16,
        "transformer_1.3b": 32,
    }
    assert configs.get("s4d_small").layer == "S4D"


def test_get_returns_fresh_configs_with_overrides():
    first = configs.get("mamba_small", vocab_size=256)
    first.ssm_cfg["layer"] = "S4D"
    assert configs.get("mamba_small").ssm_cfg == {} and first.vocab_size == 256
    with pytest.raises(KeyError, match="mamba_130m"):
        configs.get("mamba_13m")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mamba_130m", 129_135_360), ("mamba_370m", 371_516_416), ("transformer_125m", 123_568_896)],
)
def test_parameter_counts(name, expected):
    """Mamba-130M: 129.1M with vocab 50277 (padded to 50280, tied: counted once), as the reference package;
    Mamba-370M and the 12 x 768 Transformer++ match the anchors' reference counts (371.5M, 123.6M)."""
    assert configs.count_parameters(configs.get(name)) == expected


def test_every_config_round_trips_through_a_dict():
    for name in configs.names():
        config = configs.get(name)
        as_dict = dataclasses.asdict(config)
        assert type(config).from_dict(as_dict) == config
        assert type(config)(**as_dict) == config


def test_from_dict_reads_a_reference_config_json():
    reference = {
        "d_model": 768,
        "d_intermediate": 0,
        "n_layer": 24,
        "vocab_size": 50277,
        "ssm_cfg": {"layer": "Mamba1", "d_state": 16},
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": 8,
        "tie_embeddings": True,
    }
    config = MambaConfig.from_dict(reference)
    assert config.ssm_cfg == {"layer": "Mamba1"} and config.d_state == 16
    assert config == configs.get("mamba_130m", ssm_cfg={"layer": "Mamba1"})
    with pytest.raises(ValueError, match="hybrid"):
        MambaConfig.from_dict({**reference, "attn_layer_idx": [3]})
    with pytest.raises(ValueError, match="unknown field"):
        TransformerConfig.from_dict({"d_model": 64, "n_heads": 4})


def test_build_model_dispatches_on_the_config():
    assert type(build_model(configs.get("mamba_tiny", vocab_size=64))) is MambaLMHeadModel
    assert type(build_model(configs.get("transformer_tiny", vocab_size=64))) is TransformerLMHeadModel
    assert type(build_model(ClassifierConfig(d_model=16, n_layer=1))) is SequenceClassifier
    with pytest.raises(TypeError, match="MambaConfig"):
        build_model({"d_model": 16})


def test_factory_kwargs():
    model = build_model(configs.get("s4d_tiny", vocab_size=64), device="meta", dtype=torch.bfloat16)
    assert model.lm_head.weight.device.type == "meta" and model.lm_head.weight.dtype == torch.bfloat16
    assert model.backbone.layers[0].mixer.log_dt.dtype == torch.float32  # SSM parameters stay fp32


def test_main_prints_every_size(capsys):
    configs.main()
    out = capsys.readouterr().out
    for name in configs.names():
        assert name in out
    assert "129.1M" in out
