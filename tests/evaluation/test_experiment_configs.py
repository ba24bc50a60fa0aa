"""The experiment configs compose as train.py composes them, validate, and build their model; the LRA
ones put the SSM parameters (Mamba and S4D alike) at lr 1e-3 without weight decay."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from data import parse_data_config
from evaluation.data_configs import CONFIGS_DIR
from mamba_lm.trainer.config_store import register_configs
from mamba_lm.trainer.model_factory import build_model_from_dict, fit_model_to_data
from mamba_lm.trainer.optim import plan_parameter_groups

LRA = ["lra/listops", "lra/text", "lra/retrieval", "lra/image", "lra/pathfinder", "lra/pathx"]
QUICK = ["lra/quick/listops", "lra/quick/pathfinder"]
SYNTHETIC = ["synthetic/selective_copying", "synthetic/induction_heads"]
SSM_PARAMETERS = ("A_log", "dt_proj", "log_dt", "log_A_real", "A_imag")


def composed(experiment: str, *overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS_DIR), version_base="1.3"):
        config = compose(config_name="train", overrides=[f"experiment={experiment}", *overrides])
    run = OmegaConf.to_object(config)  # validates optim/trainer/logger against the schema
    parse_data_config(config.data)  # validates the data keys
    return run, OmegaConf.to_container(config.model, resolve=True)


@pytest.mark.parametrize("experiment", LRA + QUICK)
@pytest.mark.parametrize("mixer", ["mamba", "s4d"])
def test_lra_experiments_build_with_ssm_parameters_at_their_own_lr(experiment: str, mixer: str) -> None:
    # a narrow model keeps the test fast; width does not change the parameter names or the rules
    run, model_values = composed(experiment, f"model.mixer={mixer}", "model.d_model=16", "model.n_layer=1")
    assert model_values["bidirectional"] is True and model_values["pooling"] == "mean"
    assert run.optim.weight_decay == 0.05 and run.optim.schedule.value == "cosine"
    assert run.optim.warmup_steps * 10 == run.trainer.max_steps or experiment in QUICK
    model = build_model_from_dict(fit_model_to_data(model_values, "classification", 20, 2))
    groups = plan_parameter_groups(model, run.optim)
    ssm = [group for group in groups if any(part in n for n in group.names for part in SSM_PARAMETERS)]
    assert ssm and all(group.lr == 1e-3 and group.weight_decay == 0.0 for group in ssm)
    assert any(group.lr == run.optim.lr for group in groups)


def test_lra_image_is_wider_as_in_s4() -> None:
    _, model_values = composed("lra/image")
    assert (model_values["d_model"], model_values["n_layer"]) == (512, 6)
    _, model_values = composed("lra/listops")
    assert (model_values["d_model"], model_values["n_layer"]) == (256, 6)


def test_attention_classifier_drops_the_ssm_rule() -> None:
    run, model_values = composed(
        "lra/listops", "model.mixer=attention", "optim.param_groups=[]", "model.d_model=16"
    )
    model = build_model_from_dict(fit_model_to_data(model_values, "classification", 20, 10))
    assert plan_parameter_groups(model, run.optim)


@pytest.mark.parametrize("experiment", SYNTHETIC)
def test_synthetic_experiments_are_two_layers_of_width_64(experiment: str) -> None:
    run, model_values = composed(experiment)
    assert (model_values["n_layer"], model_values["d_model"]) == (2, 64)
    assert run.optim.weight_decay == 0.0 and run.optim.schedule.value == "constant"
    build_model_from_dict(fit_model_to_data(model_values, "lm", 16, None))
