"""MambaS4D: the Mamba block with a time-invariant S4D layer (the Mamba paper's "Mamba / S4" rows)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_testing import marked_no_weight_decay, relative_error
from test_s4d import explicit_recurrence

from mamba_lm import S4D, Mamba, MambaConfig, MambaLMHeadModel, MambaS4D
from mamba_lm.modules import build_mixer
from mamba_lm.trainer.flops import mixing_flops_per_token


def block_by_hand(mixer: MambaS4D, h: torch.Tensor) -> torch.Tensor:
    """The block written out from its definition, the SSM as the textbook ZOH recurrence (complex128):
    x, z = in_proj(h); x = silu(causal conv(x)); out = out_proj(ssm(x) * silu(z)). h: (batch, L, d_model)."""
    x, z = mixer.in_proj(h).chunk(2, dim=-1)
    seqlen = h.shape[1]
    x = F.conv1d(
        x.transpose(1, 2),
        mixer.conv1d.weight,
        mixer.conv1d.bias,
        padding=mixer.d_conv - 1,
        groups=mixer.d_inner,
    )[..., :seqlen]
    x = F.silu(x).transpose(1, 2)  # (batch, L, d_inner)
    y = explicit_recurrence(mixer.ssm, x).float()
    return mixer.out_proj(y * F.silu(z))


@pytest.mark.parametrize("init", ["lin", "legs"])
def test_the_block_equals_its_definition_with_the_recurrent_ssm(init):
    mixer = MambaS4D(d_model=6, d_state=8, init=init, dt_min=0.01, dt_max=0.5)
    h = torch.randn(2, 21, 6)
    assert relative_error(mixer(h), block_by_hand(mixer, h)) < 1e-5


def test_the_ssm_is_linear_time_invariant_with_no_input_dependent_parameters():
    """What sets it apart from S6: no x_proj / dt_proj (Delta, B, C do not depend on the input), so the
    SSM between the conv and the gate is one linear map, a convolution: superposition and shift invariance
    hold."""
    mixer = MambaS4D(d_model=4, d_state=8)
    names = {name for name, _ in mixer.named_parameters()}
    assert not any(name.startswith(("x_proj", "dt_proj", "A_log")) for name in names)
    assert {"in_proj.weight", "conv1d.weight", "out_proj.weight", "ssm.log_dt", "ssm.C", "ssm.D"} <= names
    assert mixer.ssm.out_proj is None  # the block's own gate and projection follow the SSM
    u1, u2 = torch.randn(2, 1, 15, 8).unbind(0)
    assert relative_error(mixer.ssm(2 * u1 - 3 * u2), 2 * mixer.ssm(u1) - 3 * mixer.ssm(u2)) < 1e-5
    delayed = torch.cat([torch.zeros(1, 4, 8), u1], dim=1)  # a shift of the input shifts the output
    assert relative_error(mixer.ssm(delayed)[:, 4:], mixer.ssm(u1)) < 1e-5


def test_a_lm_of_these_blocks_trains_and_marks_the_ssm_parameters():
    config = MambaConfig(
        d_model=8, n_layer=2, vocab_size=16, d_state=4, ssm_cfg={"layer": "MambaS4D", "ssm_lr": 1e-3}
    )
    model = MambaLMHeadModel(config)
    assert all(isinstance(layer.mixer, MambaS4D) for layer in model.backbone.layers)
    ids = torch.randint(0, 16, (2, 9))
    model(ids).logits.logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    marked = marked_no_weight_decay(model)
    assert marked == {
        f"backbone.layers.{i}.mixer.ssm.{p}" for i in range(2) for p in ("log_dt", "log_A_real", "A_imag")
    }
    assert model.backbone.layers[0].mixer.ssm.log_dt._optim == {"lr": 1e-3, "weight_decay": 0.0}


def test_it_differs_from_the_s6_block_in_the_layer_alone():
    """Same widths, projections and conv as Mamba; only the SSM's parameters differ."""
    s6, s4 = Mamba(d_model=16, d_state=8), MambaS4D(d_model=16, d_state=8)
    shapes = {name: p.shape for name, p in s6.named_parameters()}
    for name in ("in_proj.weight", "conv1d.weight", "conv1d.bias", "out_proj.weight"):
        assert s4.get_parameter(name).shape == shapes[name]
    assert s4.d_inner == s6.d_inner == 32 and s4.ssm.d_model == 32


def test_config_errors_are_named():
    with pytest.raises(ValueError, match="MambaS4D needs an even d_state"):
        MambaConfig(d_model=8, n_layer=1, vocab_size=16, d_state=5, ssm_cfg={"layer": "MambaS4D"})
    with pytest.raises(ValueError, match="dt_rank"):
        build_mixer("MambaS4D", 8, dt_rank=2)  # an S6 option: refused, with the valid ones named
    with pytest.raises(ValueError, match="n_ssm"):
        MambaS4D(d_model=4, d_state=8, n_ssm=3)  # must divide d_inner = 8
    with pytest.raises(ValueError, match="output"):
        S4D(4, output="gelu")


def test_flops_count_the_ssm_on_the_inner_width():
    common = {"d_model": 64, "n_layer": 2, "vocab_size": 16, "d_state": 16}
    s4d = MambaConfig(**common, ssm_cfg={"layer": "S4D"})
    in_block = MambaConfig(**common, ssm_cfg={"layer": "MambaS4D"})
    assert mixing_flops_per_token(in_block, 4096) == pytest.approx(2 * mixing_flops_per_token(s4d, 4096))
