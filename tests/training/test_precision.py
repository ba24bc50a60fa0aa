"""Mixed precision across processes: FSDP2's explicit policy (fp32 reduction, SSM units in fp32) and DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_trainer

from mamba_lm.config import MambaConfig, TransformerConfig
from mamba_lm.models import MambaLMHeadModel
from mamba_lm.models.transformer_lm import TransformerLMHeadModel
from mamba_lm.trainer.runtime import (
    SSM_PARAMETERS,
    fsdp_mixed_precision,
    fsdp_ssm_policy,
    make_fsdp_plugin,
    ssm_modules,
)

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("precision_run.py")
FSDP_LAUNCH_ENV = {  # what `accelerate launch --config_file configs/accelerate/fsdp.yaml` exports
    "ACCELERATE_USE_FSDP": "true",
    "FSDP_VERSION": "2",
    "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
    "FSDP_TRANSFORMER_CLS_TO_WRAP": "Block",
    "FSDP_RESHARD_AFTER_FORWARD": "true",
}


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_fsdp_policy_computes_low_and_reduces_in_fp32(precision, dtype):
    policy = fsdp_mixed_precision(precision)
    assert policy.param_dtype == dtype and policy.reduce_dtype == torch.float32
    assert not policy.cast_forward_inputs  # autocast decides; the fp32 residual stream stays fp32
    ssm = fsdp_ssm_policy()
    assert ssm.param_dtype == ssm.reduce_dtype == torch.float32 and not ssm.cast_forward_inputs


def test_fp32_needs_no_fsdp_policy():
    assert fsdp_mixed_precision("fp32") is None


def test_the_plugin_keeps_the_policy_when_accelerate_applies_bf16(monkeypatch):
    for key, value in FSDP_LAUNCH_ENV.items():
        monkeypatch.setenv(key, value)
    plugin = make_fsdp_plugin("bf16")
    plugin.set_mixed_precision("bf16")  # what AcceleratorState does with mixed_precision=bf16
    assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["Block"]
    policy = plugin.mixed_precision_policy
    assert policy.param_dtype == torch.bfloat16 and policy.reduce_dtype == torch.float32  # not bf16


def test_ssm_modules_are_the_owners_of_ssm_parameters():
    mamba = MambaLMHeadModel(MambaConfig(d_model=16, n_layer=2, vocab_size=32))
    assert ssm_modules(mamba) == [layer.mixer for layer in mamba.backbone.layers]
    s4d = MambaLMHeadModel(MambaConfig(d_model=16, n_layer=2, vocab_size=32, ssm_cfg={"layer": "S4D"}))
    owners = ssm_modules(s4d)
    assert len(owners) == 2 and all(type(module).__name__ == "S4D" for module in owners)
    names = {name for module in owners for name, _ in module.named_parameters(recurse=False)}
    assert {"log_dt", "log_A_real", "A_imag"} <= names and {"A_log", "D"} <= SSM_PARAMETERS
    transformer = TransformerLMHeadModel(TransformerConfig(d_model=16, n_layer=1, n_head=2, vocab_size=32))
    assert ssm_modules(transformer) == []


def launch(out: Path, mode: str, port: int) -> list[dict]:
    if mode == "ddp":
        config = str(REPO / "configs" / "accelerate" / "cpu_ddp.yaml")
        launcher = ["accelerate.commands.launch", "--config_file", config, "--main_process_port", str(port)]
    else:
        launcher = ["torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    command = [sys.executable, "-m", *launcher, str(WORKER), str(out), mode]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def test_ddp_with_bf16_autocast_keeps_weights_gradients_and_all_reduce_in_fp32(tmp_path):
    reports = launch(tmp_path, "ddp", 29581)
    for report in reports:
        assert report["mixed_precision"] == "bf16" and report["seen"]["out_proj_output"] == "bfloat16"
        assert report["seen"]["in_proj.weight"] == report["seen"]["A_log"] == "float32"
        assert {g["dtype"] for g in report["grads"].values()} == {"float32"}
        assert {g["param"] for g in report["grads"].values()} == {"float32"}
    # each rank trained on its own batch: equal gradients mean they were all-reduced (in fp32)
    assert reports[0]["grads"] == reports[1]["grads"]


def test_fsdp_units_gather_blocks_in_bf16_and_ssm_modules_in_fp32(tmp_path):
    """FSDP2 on 2 gloo processes through the prepare make_accelerator installs (a stand-in for accelerate's
    sharding, which needs GPUs); the fp32 reduction itself is the policy object tested above."""
    for report in launch(tmp_path, "fsdp", 29582):
        assert report["units"] == 2 and report["optimizer_follows"]  # one fp32 unit per Mamba mixer
        assert report["seen"]["norm.weight"] == "bfloat16"  # a Block unit: gathered in bf16
        assert report["seen"]["A_log"] == report["seen"]["in_proj.weight"] == "float32"  # the mixer's unit
        assert report["seen"]["out_proj_output"] == "bfloat16"  # autocast computes the projections in bf16
        assert {g["dtype"] for g in report["grads"].values()} == {"float32"}  # cast back after reduction
        assert {g["param"] for g in report["grads"].values()} == {"float32"}  # fp32 shards


@pytest.mark.parametrize(("tf32", "precision"), [(True, "high"), (False, "highest")])
def test_tf32_sets_the_fp32_matmul_precision_as_the_trainer_prepares(accelerator, tmp_path, tf32, precision):
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")  # neither value: the trainer must set it
        tiny_trainer(accelerator, tmp_path, tf32=tf32).prepare()
        assert torch.get_float32_matmul_precision() == precision
    finally:
        torch.set_float32_matmul_precision(before)
