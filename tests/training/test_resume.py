"""A resumed run reproduces the uninterrupted run step for step."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch
from helpers import CountingLoader, logged, tiny_mamba, tiny_trainer

from mamba_lm.trainer.checkpoint import list_checkpoints, load_model


class InterruptedLoader(CountingLoader):
    """Interrupts the run while fetching batch number ``at``: by SIGTERM, or by a crash (as SIGKILL would)."""

    def __init__(self, batch_size: int, at: int, how: str):
        super().__init__(batch_size)
        self.at, self.how = at, how

    def __next__(self):
        if self.position == self.at:
            if self.how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # the loop finishes this step, saves, returns
            else:
                raise RuntimeError("simulated crash")
        return super().__next__()


@pytest.mark.parametrize(("grad_accum_steps", "how"), [(1, "sigterm"), (2, "crash")])
def test_n_plus_resume_plus_n_equals_2n_straight(accelerator, tmp_path, grad_accum_steps, how):
    n, batch = 4, 4
    settings = dict(max_steps=2 * n, save_every=n, eval_every=n, keep_last=5)
    settings["grad_accum_steps"] = grad_accum_steps
    straight = tmp_path / "straight"
    tiny_trainer(accelerator, straight, **settings).fit()

    split = tmp_path / "split"
    if how == "sigterm":  # signalled during step n: it completes, is saved, and the run returns
        loader = InterruptedLoader(batch, at=(n - 1) * grad_accum_steps, how=how)
        summary = tiny_trainer(accelerator, split, loader=loader, **settings).fit()
        assert summary.stopped_by_signal == "SIGTERM" and summary.step == n
    else:  # killed while fetching step n + 1: the checkpoint of step n is the last one
        loader = InterruptedLoader(batch, at=n * grad_accum_steps, how=how)
        with pytest.raises(RuntimeError, match="simulated crash"):
            tiny_trainer(accelerator, split, loader=loader, **settings).fit()
    assert list_checkpoints(split)[0].name == f"step_{n:08d}"

    # A new process would start from other weights and RNG states: make sure nothing leaks through.
    torch.manual_seed(1234), random.seed(1234), np.random.seed(1234)
    summary = tiny_trainer(accelerator, split, model=tiny_mamba(seed=99), **settings).fit()

    assert summary.step == 2 * n
    assert logged(split) == logged(straight)  # the loss of every step, bit for bit
    assert logged(split, "val_loss")[-1] == logged(straight, "val_loss")[-1]  # (a stop skips validation)
    assert logged(split, "lr") == logged(straight, "lr")
    assert len(logged(straight)) == 2 * n
    final_straight, _ = load_model(straight)
    final_split, _ = load_model(split)
    for name, tensor in final_straight.state_dict().items():
        torch.testing.assert_close(final_split.state_dict()[name], tensor, rtol=0, atol=0)


def test_resume_drops_metrics_logged_after_the_checkpoint(accelerator, tmp_path):
    """After a SIGKILL, steps past the last checkpoint are redone and logged once."""
    tiny_trainer(accelerator, tmp_path, max_steps=5, save_every=3).fit()
    newest = list_checkpoints(tmp_path)[0]
    assert newest.name == "step_00000005"
    import shutil

    shutil.rmtree(newest)  # as if killed after step 5 was logged but before its checkpoint
    tiny_trainer(accelerator, tmp_path, max_steps=6, save_every=3).fit()
    assert [r for r in logged(tmp_path, "step")] == [1, 2, 3, 4, 5, 6]


def test_resume_from_an_explicit_checkpoint_path(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path / "a", max_steps=3).fit()
    checkpoint = list_checkpoints(tmp_path / "a")[0]
    loader = CountingLoader(4)
    trainer = tiny_trainer(accelerator, tmp_path / "b", loader=loader, max_steps=5, resume=str(checkpoint))
    summary = trainer.fit()
    assert summary.step == 5 and loader.position == 5
    assert logged(tmp_path / "b", "step") == [4, 5]
