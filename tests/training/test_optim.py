"""Parameter groups (who gets weight decay) and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_mamba

from mamba_lm import ClassifierConfig, TransformerConfig, TransformerLMHeadModel, build_model
from mamba_lm.trainer.config import OptimConfig, ParamGroupRule, Schedule
from mamba_lm.trainer.optim import LRSchedule, build_optimizer, plan_parameter_groups


def _decay_by_name(model, config: OptimConfig) -> dict[str, tuple[float, float]]:
    return {name: (g.lr, g.weight_decay) for g in plan_parameter_groups(model, config) for name in g.names}


def test_mamba_no_decay_on_biases_norms_embeddings_alog_and_d():
    model = tiny_mamba()
    groups = _decay_by_name(model, OptimConfig(weight_decay=0.1))
    for name, (_, decay) in groups.items():
        exempt = (
            name.endswith("bias")
            or "norm" in name
            or name.endswith(("A_log", ".D"))
            or name == "backbone.embedding.weight"
        )
        assert decay == (0.0 if exempt else 0.1), name
    assert groups["backbone.layers.0.mixer.in_proj.weight"][1] == 0.1
    assert groups["backbone.layers.0.mixer.A_log"][1] == 0.0
    assert groups["backbone.layers.0.mixer.D"][1] == 0.0
    assert groups["backbone.layers.0.mixer.dt_proj.bias"][1] == 0.0
    assert "lm_head.weight" not in groups  # tied to the embedding: one parameter, listed once
    assert sum(p.numel() for p in model.parameters()) == sum(
        dict(model.named_parameters())[n].numel() for n in groups
    )


def test_decay_embeddings_option_and_transformer_groups():
    torch.manual_seed(0)
    model = TransformerLMHeadModel(TransformerConfig(d_model=32, n_layer=1, n_head=2, vocab_size=40))
    groups = _decay_by_name(model, OptimConfig(decay_embeddings=True))
    assert groups["backbone.embedding.weight"][1] == 0.1
    groups = _decay_by_name(model, OptimConfig())
    assert groups["backbone.embedding.weight"][1] == 0.0
    matrices = [n for n in groups if dict(model.named_parameters())[n].ndim == 2 and "embedding" not in n]
    assert matrices and all(groups[n][1] == 0.1 for n in matrices)
    norms = [n for n in groups if "norm" in n]
    assert norms and all(groups[n][1] == 0.0 for n in norms)


def test_s4d_optim_attribute_and_config_rules():
    torch.manual_seed(0)
    config = ClassifierConfig(num_classes=3, mixer="s4d", d_model=16, n_layer=1, vocab_size=20)
    config.mixer_cfg = {"ssm_lr": 1e-3}
    model = build_model(config)
    groups = _decay_by_name(model, OptimConfig(lr=4e-3))
    ssm = [n for n in groups if n.endswith(("log_dt", "log_A_real", "A_imag"))]
    assert ssm and all(groups[n] == (1e-3, 0.0) for n in ssm)
    rule = ParamGroupRule(match=r"log_dt", lr=2e-4, weight_decay=0.05)
    groups = _decay_by_name(model, OptimConfig(lr=4e-3, param_groups=[rule]))
    assert all(groups[n] == (2e-4, 0.05) for n in ssm if n.endswith("log_dt"))
    assert all(groups[n] == (1e-3, 0.0) for n in ssm if not n.endswith("log_dt"))


def test_unmatched_rule_is_an_error():
    with pytest.raises(ValueError, match="matches no parameter"):
        plan_parameter_groups(tiny_mamba(), OptimConfig(param_groups=[ParamGroupRule(match="A_logg")]))


def test_optimizer_groups_betas_and_initial_lr():
    optimizer = build_optimizer(tiny_mamba(), OptimConfig(lr=1e-3, betas=[0.9, 0.95]))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.0, 0.1}
    assert all(g["betas"] == (0.9, 0.95) and g["initial_lr"] == 1e-3 for g in optimizer.param_groups)
    assert not any(g.get("fused") for g in optimizer.param_groups)  # CPU: not fused


def test_warmup_then_cosine_to_min_lr():
    schedule = LRSchedule(peak_lr=1e-3, min_lr=1e-5, warmup_steps=10, max_steps=110)
    assert schedule.lr(0) == pytest.approx(1e-4)
    assert schedule.lr(4) == pytest.approx(5e-4)
    assert schedule.lr(9) == pytest.approx(1e-3)
    assert schedule.lr(10) == pytest.approx(1e-3)
    assert schedule.lr(60) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # half-way down the cosine
    assert schedule.lr(35) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 0.25)))
    assert schedule.lr(110) == pytest.approx(1e-5)
    assert schedule.lr(500) == pytest.approx(1e-5)
    values = [schedule.lr(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_constant_schedule_and_group_scaling():
    schedule = LRSchedule(peak_lr=2e-3, min_lr=1e-5, warmup_steps=0, max_steps=50, schedule=Schedule.constant)
    assert schedule.lr(0) == schedule.lr(49) == 2e-3
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(
        [{"params": [model.weight], "initial_lr": 2e-3}, {"params": [model.bias], "initial_lr": 1e-3}]
    )
    cosine = LRSchedule(peak_lr=2e-3, min_lr=0.0, warmup_steps=4, max_steps=10)
    cosine.apply(optimizer, 1)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 5e-4])


def test_optim_config_range_errors_name_the_key():
    with pytest.raises(ValueError, match="optim.min_lr"):
        OptimConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="optim.betas"):
        OptimConfig(betas=[0.9])
