"""The Mamba mixer and LM: layout, initialization, packed documents, dtypes, the reference state_dict."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from mamba_lm.kernels import selective_scan_ref
from model_testing import VOCAB, marked_no_weight_decay, relative_error, tiny_config

from mamba_lm import Mamba, MambaConfig, MambaLMHeadModel


def reference_mamba_forward(mixer: Mamba, hidden: torch.Tensor) -> torch.Tensor:
    """The reference package's unfused path, channels-first, with nn.Conv1d and the sequential scan."""
    seqlen = hidden.shape[1]
    xz = mixer.in_proj(hidden).transpose(1, 2)  # (b, 2 d_inner, l)
    x, z = xz.chunk(2, dim=1)
    x = F.silu(mixer.conv1d(x)[..., :seqlen])
    x_dbl = mixer.x_proj(x.transpose(1, 2))
    dt, B, C = torch.split(x_dbl, [mixer.dt_rank, mixer.d_state, mixer.d_state], dim=-1)
    dt = (dt @ mixer.dt_proj.weight.T).transpose(1, 2)
    y = selective_scan_ref(
        x,
        dt,
        -torch.exp(mixer.A_log),
        B.transpose(1, 2),
        C.transpose(1, 2),
        mixer.D,
        z=z,
        delta_bias=mixer.dt_proj.bias,
        delta_softplus=True,
    )
    return mixer.out_proj(y.transpose(1, 2))


def test_mixer_matches_the_reference_unfused_path():
    mixer = Mamba(d_model=16, d_state=4, layer_idx=0)
    hidden = torch.randn(2, 11, 16)
    assert relative_error(mixer(hidden), reference_mamba_forward(mixer, hidden)) < 1e-5


def test_mixer_gradients_match_the_reference_path():
    mixer = Mamba(d_model=8, d_state=4)
    hidden = torch.randn(2, 7, 8, requires_grad=True)
    mixer(hidden).square().sum().backward()
    ours = {n: p.grad.clone() for n, p in mixer.named_parameters()} | {"input": hidden.grad.clone()}
    mixer.zero_grad()
    hidden.grad = None
    reference_mamba_forward(mixer, hidden).square().sum().backward()
    theirs = {n: p.grad for n, p in mixer.named_parameters()} | {"input": hidden.grad}
    for name in theirs:
        assert relative_error(ours[name], theirs[name]) < 1e-4, name


def test_mixer_layout_and_initialization():
    d_model, d_state = 64, 16
    mixer = Mamba(d_model, d_state=d_state, dt_min=0.001, dt_max=0.1)
    d_inner, dt_rank = 2 * d_model, math.ceil(d_model / 16)
    shapes = {name: tuple(p.shape) for name, p in mixer.named_parameters()}
    assert shapes == {
        "A_log": (d_inner, d_state),
        "D": (d_inner,),
        "in_proj.weight": (2 * d_inner, d_model),
        "conv1d.weight": (d_inner, 1, 4),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 2 * d_state, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "out_proj.weight": (d_model, d_inner),
    }
    assert torch.equal(mixer.A_log, torch.log(torch.arange(1, d_state + 1.0)).expand(d_inner, d_state))
    assert torch.equal(mixer.D, torch.ones(d_inner))
    assert mixer.dt_proj.weight.abs().max() <= dt_rank**-0.5
    dt = F.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 0.001 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    assert dt.log().std() > 0.5  # spread log-uniformly, not constant
    assert mixer.A_log._no_weight_decay and mixer.D._no_weight_decay
    assert mixer.A_log.dtype == mixer.D.dtype == torch.float32


def test_dt_init_constant_and_floor():
    mixer = Mamba(16, dt_init="constant", dt_min=1e-6, dt_max=2e-6, dt_init_floor=1e-4)
    assert torch.allclose(mixer.dt_proj.weight, torch.full_like(mixer.dt_proj.weight, 1**-0.5))
    assert torch.allclose(F.softplus(mixer.dt_proj.bias), torch.full((32,), 1e-4), rtol=1e-3)


def test_lm_initialization_follows_the_reference():
    n_layer = 4
    model = MambaLMHeadModel(MambaConfig(d_model=64, n_layer=n_layer, vocab_size=1000))
    assert model.lm_head.weight is model.backbone.embedding.weight
    assert abs(model.backbone.embedding.weight.std().item() - 0.02) < 0.002
    d_inner = 128
    kaiming_bound = 1 / math.sqrt(d_inner)  # nn.Linear's default uniform bound
    for layer in model.backbone.layers:
        out_proj = layer.mixer.out_proj.weight
        assert out_proj.abs().max() <= kaiming_bound / math.sqrt(n_layer)
        assert out_proj.abs().max() > 0.9 * kaiming_bound / math.sqrt(n_layer)
        dt = F.softplus(layer.mixer.dt_proj.bias)  # kept through the LM init (_no_reinit)
        assert dt.min() >= 0.001 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    assert marked_no_weight_decay(model) == {
        f"backbone.layers.{i}.mixer.{p}" for i in range(n_layer) for p in ("A_log", "D")
    }


def test_state_dict_keys_are_the_reference_ones():
    model = MambaLMHeadModel(tiny_config("mamba"))
    per_layer = [
        "in_proj.weight",
        "conv1d.weight",
        "conv1d.bias",
        "x_proj.weight",
        "dt_proj.weight",
        "dt_proj.bias",
    ]
    per_layer += ["A_log", "D", "out_proj.weight"]
    expected = {"backbone.embedding.weight", "backbone.norm_f.weight", "lm_head.weight"}
    for i in range(2):
        expected |= {f"backbone.layers.{i}.norm.weight"} | {
            f"backbone.layers.{i}.mixer.{k}" for k in per_layer
        }
    assert set(model.state_dict()) == expected


def test_reference_layout_state_dict_loads_unchanged():
    """A state_dict written with the reference package's key names (built by hand here) loads strictly."""
    d_model, n_layer, d_state, vocab = 16, 2, 4, 64
    d_inner, dt_rank = 2 * d_model, 1
    g = torch.Generator().manual_seed(1)
    reference = {"backbone.embedding.weight": torch.randn(vocab, d_model, generator=g)}
    for i in range(n_layer):
        prefix = f"backbone.layers.{i}."
        reference |= {
            prefix + "norm.weight": 1 + 0.1 * torch.randn(d_model, generator=g),
            prefix + "mixer.in_proj.weight": 0.1 * torch.randn(2 * d_inner, d_model, generator=g),
            prefix + "mixer.conv1d.weight": 0.3 * torch.randn(d_inner, 1, 4, generator=g),
            prefix + "mixer.conv1d.bias": 0.1 * torch.randn(d_inner, generator=g),
            prefix + "mixer.x_proj.weight": 0.1 * torch.randn(dt_rank + 2 * d_state, d_inner, generator=g),
            prefix + "mixer.dt_proj.weight": torch.randn(d_inner, dt_rank, generator=g),
            prefix + "mixer.dt_proj.bias": torch.randn(d_inner, generator=g) - 4,
            prefix + "mixer.A_log": torch.log(torch.arange(1, d_state + 1.0)).repeat(d_inner, 1),
            prefix + "mixer.D": torch.randn(d_inner, generator=g),
            prefix + "mixer.out_proj.weight": 0.1 * torch.randn(d_model, d_inner, generator=g),
        }
    reference["backbone.norm_f.weight"] = torch.ones(d_model)
    reference["lm_head.weight"] = reference["backbone.embedding.weight"]
    config = MambaConfig.from_dict(
        {"d_model": d_model, "n_layer": n_layer, "vocab_size": vocab, "ssm_cfg": {"d_state": d_state}}
    )
    model = MambaLMHeadModel(config)
    model.load_state_dict(reference, strict=True)
    for key, value in reference.items():
        assert torch.equal(model.state_dict()[key], value), key
    ids = torch.randint(0, vocab, (1, 9))
    assert torch.isfinite(model(ids).logits).all()


def test_vocab_is_padded_and_tied_embeddings_counted_once():
    model = MambaLMHeadModel(MambaConfig(d_model=16, n_layer=1, vocab_size=50277))
    assert model.backbone.embedding.weight.shape == (50280, 16)
    assert model(torch.tensor([[50276, 3]])).logits.shape == (1, 2, 50280)
    untied = MambaLMHeadModel(MambaConfig(d_model=16, n_layer=1, vocab_size=50277, tie_embeddings=False))
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(untied) - count(model) == 50280 * 16


def test_backward_reaches_every_parameter():
    model = MambaLMHeadModel(tiny_config("mamba"))
    ids = torch.randint(0, VOCAB, (2, 10))
    seq_idx = torch.tensor([[0] * 4 + [1] * 6, [0] * 10], dtype=torch.int32)
    logits = model(ids, seq_idx=seq_idx).logits
    F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_low_precision_forward_runs():
    """The dtypes line up for the scan under bf16 autocast and in a bf16 model (what the GPU runs)."""
    config = tiny_config("mamba")
    ids = torch.randint(0, VOCAB, (2, 10))
    model = MambaLMHeadModel(config)
    reference = model(ids).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_logits = model(ids).logits
    assert autocast_logits.dtype == torch.bfloat16
    assert relative_error(autocast_logits.float(), reference) < 0.05
    bf16_model = MambaLMHeadModel(config, dtype=torch.bfloat16)
    bf16_model.load_state_dict(model.state_dict())
    assert bf16_model.backbone.layers[0].mixer.A_log.dtype == torch.float32  # as the reference keeps it
    assert relative_error(bf16_model(ids).logits.float(), reference) < 0.05


def test_bad_input_names_the_problem():
    model = MambaLMHeadModel(tiny_config("mamba"))
    with pytest.raises(ValueError, match="input_ids must lie in"):
        model(torch.tensor([[0, 56]]))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(batch, seqlen\)"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="seq_idx must be"):
        model(torch.zeros(1, 3, dtype=torch.long), seq_idx=torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="ssm_cfg keys"):
        MambaConfig(ssm_cfg={"d_state": 4})
    with pytest.raises(ValueError, match="dt_init"):
        MambaConfig(dt_init="uniform")


def test_layer_norm_variant():
    model = MambaLMHeadModel(tiny_config("mamba", rms_norm=False))
    assert isinstance(model.backbone.norm_f, torch.nn.LayerNorm)
    assert torch.isfinite(model(torch.randint(0, VOCAB, (2, 5))).logits).all()
