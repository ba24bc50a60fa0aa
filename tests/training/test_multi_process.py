"""Two data-parallel CPU processes (gloo, through ``accelerate launch``) against one process.

Each step's global batch is ``micro_batch_size x grad_accum_steps x processes`` blocks, taken in the
sampler's order: step ``k`` reads positions ``[k G, (k + 1) G)`` of the epoch's permutation (G the global
batch), rank ``r`` of ``P`` the ``r``-th slice of ``G / P``, and one process with ``grad_accum_steps = P``
the same slices as its consecutive micro-batches. So 2 processes x batch b and 1 process x batch b x 2
accumulation steps train on the same blocks, and (fp32) follow the same loss curve up to rounding.
This holds within an epoch: one process drops an epoch's tail in micro-batches of b, two in global
batches of 2b, so past an epoch end whose remainder holds a micro-batch the two orders shift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import random_words_corpus
from safetensors.torch import load_file
from worker_launch import losses, train

from mamba_lm.trainer.checkpoint import list_checkpoints
from mamba_lm.trainer.metrics import read_metrics

RTOL = 1e-5


def small_corpus(folder: Path) -> dict:
    return random_words_corpus(folder, "multi_process_test", documents=200, words=60)


def weights(run_dir: Path) -> dict:
    return load_file(list_checkpoints(run_dir)[0] / "model.safetensors")


def assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=RTOL, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return small_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory) -> Path:
    """8 steps on 1 process: micro-batch 4, 2 accumulation steps (global batch 8), a checkpoint each 4."""
    run_dir = tmp_path_factory.mktemp("one")
    train(run_dir, data, 1, 0, micro_batch=4, grad_accum=2, max_steps=8, save_every=4)
    return run_dir


def test_two_processes_follow_the_one_process_loss_curve(data, one_process, tmp_path):
    train(tmp_path, data, 2, 29531, micro_batch=4, grad_accum=1, max_steps=8, save_every=4)
    two, one = losses(tmp_path), losses(one_process)
    assert len(two) == len(one) == 8
    assert two == pytest.approx(one, rel=RTOL)
    assert one[-1] < one[0]  # it trained: equal curves are not two flat lines
    assert_same_weights(weights(tmp_path), weights(one_process))


@pytest.mark.parametrize(("first", "second"), [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_on_another_number_of_processes(data, one_process, tmp_path, first, second):
    """4 steps on ``first`` processes, then 4 more on ``second``, at the same global batch of 8."""
    accumulation = {1: 2, 2: 1}
    for processes, steps in ((first, 4), (second, 8)):
        options = dict(micro_batch=4, grad_accum=accumulation[processes], max_steps=steps, save_every=4)
        train(tmp_path, data, processes, 29532 + first, **options)
    state = json.loads((list_checkpoints(tmp_path)[0] / "trainer_state.json").read_text())
    assert state["step"] == 8 and state["world_size"] == second
    assert losses(tmp_path) == pytest.approx(losses(one_process), rel=RTOL)  # step 5 is the resumed step
    assert_same_weights(weights(tmp_path), weights(one_process))


@pytest.mark.parametrize("same_position", [True, False])
def test_another_process_count_needs_one_shared_data_position(accelerator, tmp_path, same_position):
    """A checkpoint of 2 processes whose data positions differ (per-process streams) resumes only on 2."""
    from helpers import tiny_trainer

    from mamba_lm.trainer.checkpoint import CheckpointError, load_training_state

    trainer = tiny_trainer(accelerator, tmp_path, max_steps=2, save_every=2)
    trainer.fit()
    checkpoint = list_checkpoints(tmp_path)[0]
    state_file = checkpoint / "trainer_state.json"
    state = json.loads(state_file.read_text())
    other = dict(state["ranks"][0], data={"position": 2 if same_position else 3})
    state_file.write_text(json.dumps(dict(state, world_size=2, ranks=[state["ranks"][0], other])))
    model, optimizer = trainer.model, trainer.optimizer.optimizer
    if same_position:
        _, rank_state = load_training_state(checkpoint, model, optimizer, accelerator)
        assert rank_state == state["ranks"][0]
    else:
        with pytest.raises(CheckpointError, match="written by 2 processes with a data position each"):
            load_training_state(checkpoint, model, optimizer, accelerator)


def test_streaming_data_on_two_processes_resumes_on_two_only(data, tmp_path):
    """Each rank streams (and tokenizes) its own share; its position resumes on its rank only."""
    streaming = dict(data, dataset=dict(data["dataset"], streaming=True), name="multi_process_stream")
    train(tmp_path, streaming, 2, 29541, micro_batch=4, max_steps=4, save_every=2)
    state = json.loads((list_checkpoints(tmp_path)[0] / "trainer_state.json").read_text())
    positions = [rank["data"] for rank in state["ranks"]]
    assert [p["rank"] for p in positions] == [0, 1] and positions[0]["position"] > 0
    output = train(tmp_path, streaming, 1, 0, succeed=False, micro_batch=4, grad_accum=2, max_steps=6)
    assert "written by 2 processes with a data position each" in output
    train(tmp_path, streaming, 2, 29542, micro_batch=4, max_steps=6, save_every=2)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == list(range(1, 7))
