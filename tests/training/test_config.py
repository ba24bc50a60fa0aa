"""Hydra configs: every named size of the registry selectable (defined there only); bad input fails early."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from mamba_lm import configs as registry
from mamba_lm.trainer.config import Precision, RunConfig
from mamba_lm.trainer.config_store import register_configs
from mamba_lm.trainer.model_factory import arch_of, model_config_from_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
register_configs()


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("name", registry.names())
def test_every_named_size_composes_to_the_registry(name):
    node = _compose(f"model={name}").model
    values = OmegaConf.to_container(node, resolve=True)
    expected = registry.get(name)
    assert values.pop("arch") == arch_of(expected), name
    assert values.pop("init_from") is None, name  # no pretrained weights unless model.init_from=PATH
    assert values == dataclasses.asdict(expected), name
    assert model_config_from_dict(OmegaConf.to_container(node)) == expected


def test_sizes_are_defined_once_in_the_registry():
    """No config file restates a size: the model group's options are the registry's names and the schemas."""
    assert not list((CONFIGS / "model").glob("*.yaml"))
    assert {"mamba_130m", "transformer_1.3b", "mamba_tiny"} <= set(registry.names())


def test_a_named_size_takes_field_overrides():
    model = _compose("model=mamba_130m", "model.d_model=512", "model.d_state=8").model
    assert (model.d_model, model.n_layer, model.d_state) == (512, 24, 8)
    assert model_config_from_dict(OmegaConf.to_container(model)) == registry.get(
        "mamba_130m", d_model=512, d_state=8
    )
    assert _compose("model=transformer_350m").model.d_intermediate == 2688


def test_default_composition_is_valid():
    cfg = _compose()
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, RunConfig)
    assert cfg.model.d_model == registry.get("mamba_small").d_model and cfg.data.name == "embedded"
    assert run.trainer.precision == Precision.auto and run.resume == "auto"
    assert run.optim.betas == [0.9, 0.95] and run.optim.weight_decay == 0.1 and run.optim.grad_clip == 1.0
    assert run.optim.min_lr == 1e-5
    for key in ("max_steps", "save_every", "log_every", "eval_every"):  # keys scripts rely on (API.md)
        assert key in cfg.trainer


@pytest.mark.parametrize(
    "experiment",
    sorted(
        p.relative_to(CONFIGS / "experiment").with_suffix("").as_posix()
        for p in (CONFIGS / "experiment").rglob("*.yaml")
    ),
)
def test_every_experiment_composes(experiment):
    run = OmegaConf.to_object(_compose(f"experiment={experiment}"))
    assert run.trainer.max_steps >= 1


def test_paper_experiment_recipe():
    cfg = _compose("experiment=paper/mamba_370m")
    assert (cfg.model.d_model, cfg.model.n_layer) == (1024, 48)
    assert cfg.optim.lr == 1.5e-3 and cfg.trainer.max_steps == 13500 and cfg.trainer.precision == "bf16"
    tokens_per_step = cfg.trainer.micro_batch_size * cfg.trainer.grad_accum_steps * cfg.data.seqlen
    assert tokens_per_step == 2**19  # 0.5M tokens


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_step=5", r"override 'trainer.max_step'[\s\S]*Key 'max_step' not in 'TrainerConfig'"),
        ("trainer.max_steps=abc", r"'abc'[\s\S]*full_key: trainer.max_steps"),
        ("trainer.precision=bf32", r"Invalid value 'bf32'[\s\S]*full_key: trainer.precision"),
        ("optim.lr=fast", r"full_key: optim.lr"),
        ("model.d_modle=3", r"Key 'd_modle' not in 'MambaConfigSchema'"),
        ("model.n_layer=2.5", r"full_key: model.n_layer"),
        ("logger.backend=tensorboard", r"full_key: logger.backend"),
        ("seeed=1", r"seeed"),
    ],
)
def test_misspelled_keys_and_wrong_types_fail_at_composition(override, message):
    with pytest.raises(ConfigCompositionException) as error:
        _compose(override)
    assert re.search(message, _cause_chain(error.value)), _cause_chain(error.value)


def _cause_chain(error: BaseException) -> str:
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_steps=0", "'trainer.max_steps' must be >= 1, got 0"),
        ("optim.min_lr=1.0", "'optim.min_lr' must be in [0, optim.lr]"),
        ("optim.betas=[0.9]", "'optim.betas' must be a list of two numbers"),
        ("+trainer.max_step=5", "unknown config key(s) ['trainer.max_step']"),  # `+` adds past the schema
    ],
)
def test_out_of_range_values_fail_before_any_work(override, message):
    cfg = _compose(override)
    with pytest.raises(Exception) as error:
        OmegaConf.to_object(cfg)
    assert message in _cause_chain(error.value)


def test_model_value_errors_name_the_field():
    cfg = _compose("model.d_model=-4")
    with pytest.raises(ValueError, match="d_model must be a positive int"):
        model_config_from_dict(OmegaConf.to_container(cfg.model))
    cfg = _compose("+model.d_modle=3")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['d_modle'\]"):
        model_config_from_dict(OmegaConf.to_container(cfg.model))
    with pytest.raises(ValueError, match="model.arch must be one of"):
        model_config_from_dict({"arch": "rnn"})
