"""Data-parallel training on two GPUs (DDP and FSDP2 through ``accelerate launch``, bf16) against one GPU.

    pytest -m gpu tests/training/test_multi_gpu.py          # on a machine with >= 2 GPUs
    MULTI_GPU_MODELS=mamba_130m,transformer_125m pytest -m gpu tests/training/test_multi_gpu.py

The GPU side of tests/training/test_multi_process.py (which runs the same worker on two CPU processes in
fp32, where the curves agree to rounding): 2 GPUs x micro-batch b and 1 GPU x b x 2 accumulation steps
read the same blocks, so their loss curves agree to bf16 noise; a checkpoint written on N GPUs resumes on
M. Weights stay fp32, autocast computes in bf16, gradients are reduced in fp32 (under FSDP2 the blocks
are gathered in bf16 and the SSM modules stay fp32 units: ``mamba_lm.trainer.runtime``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from helpers import random_words_corpus
from worker_launch import REPO, losses, train

from mamba_lm.trainer.checkpoint import list_checkpoints

LAUNCH_CONFIGS = {name: REPO / "configs" / "accelerate" / f"{name}.yaml" for name in ("ddp", "fsdp")}
MODELS = os.environ.get("MULTI_GPU_MODELS", "mamba_130m,transformer_125m").split(",")
STEPS = 50
BF16_RTOL = 2e-2  # per-step loss: the two runs sum the same gradients in another order, in bf16 matmuls

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs"),
]


def train_gpus(run_dir: Path, data: dict, gpus: int, launch: str, model: str, steps: int, port: int = 29571):
    """``steps`` steps (global batch 16) of ``model`` in bf16 on ``gpus`` GPUs (more than one: under the
    ``launch`` config; one: on its own)."""
    options = dict(model=model, precision="bf16", device="cuda", micro_batch=8, grad_accum=2 // gpus)
    train(
        run_dir,
        data,
        gpus,
        port,
        config=LAUNCH_CONFIGS[launch],
        timeout=900,
        **options,
        max_steps=steps,
        save_every=STEPS // 2,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    corpus = random_words_corpus(
        tmp_path_factory.mktemp("corpus"), "multi_gpu_test", documents=2000, words=200
    )
    return dict(corpus, seqlen=256)


@pytest.fixture(scope="module")
def one_gpu(data, tmp_path_factory) -> dict[str, Path]:
    """Each model's 50 steps on one GPU, micro-batch 8 x 2 accumulation steps."""
    runs = {}
    for model in MODELS:
        runs[model] = tmp_path_factory.mktemp(f"one_{model}")
        train_gpus(runs[model], data, 1, "ddp", model, STEPS)
    return runs


@pytest.mark.parametrize("launch", ["ddp", "fsdp"])
@pytest.mark.parametrize("model", MODELS)
def test_two_gpus_follow_the_one_gpu_loss_curve(data, one_gpu, tmp_path, launch, model):
    train_gpus(tmp_path, data, 2, launch, model, STEPS)
    two, one = losses(tmp_path), losses(one_gpu[model])
    assert len(two) == len(one) == STEPS
    assert two == pytest.approx(one, rel=BF16_RTOL)
    assert one[-1] < one[0] - 0.5  # it trained: equal curves are not two flat lines


@pytest.mark.parametrize("launch", ["ddp", "fsdp"])
@pytest.mark.parametrize(("first", "second"), [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_on_another_number_of_gpus(data, one_gpu, tmp_path, launch, first, second):
    """25 steps on ``first`` GPUs, then 25 more on ``second``: the resumed steps follow the one-GPU curve."""
    model = MODELS[0]
    train_gpus(tmp_path, data, first, launch, model, STEPS // 2)
    train_gpus(tmp_path, data, second, launch, model, STEPS, port=29572)
    state = json.loads((list_checkpoints(tmp_path)[0] / "trainer_state.json").read_text())
    assert state["step"] == STEPS and state["world_size"] == second
    resumed, one = losses(tmp_path), losses(one_gpu[model])
    assert resumed[STEPS // 2] == pytest.approx(one[STEPS // 2], rel=BF16_RTOL)  # the first resumed step
    assert resumed == pytest.approx(one, rel=BF16_RTOL)
