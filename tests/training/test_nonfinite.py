"""Non-finite losses: the step is skipped and counted; K in a row stop the run; checkpoints stay intact."""

from __future__ import annotations

import pytest
import torch
from helpers import logged, tiny_mamba, tiny_trainer
from torch import nn

from mamba_lm.trainer import NonFiniteLossError, find_latest_checkpoint
from mamba_lm.trainer.checkpoint import list_checkpoints
from mamba_lm.trainer.state_io import load_tensors


class PoisonedModel(nn.Module):
    """Wraps an LM; forward calls (with labels, as the trainer makes them) whose number is in
    ``poisoned`` return a NaN loss."""

    def __init__(self, model: nn.Module, poisoned: set[int] | range):
        super().__init__()
        self.model, self.poisoned, self.calls = model, poisoned, 0

    def forward(self, input_ids, **kwargs):
        sums = self.model(input_ids, **kwargs)
        self.calls += 1
        return sums._replace(loss_sum=sums.loss_sum * float("nan")) if self.calls in self.poisoned else sums


def test_a_nonfinite_step_is_skipped_and_counted(accelerator, tmp_path):
    model = PoisonedModel(tiny_mamba(), poisoned={3})
    summary = tiny_trainer(accelerator, tmp_path, model=model, max_steps=5).fit()
    assert summary.step == 5 and summary.skipped_steps == 1
    losses = logged(tmp_path)
    assert losses[2] is None and all(loss is not None for i, loss in enumerate(losses) if i != 2)
    assert logged(tmp_path, "skipped_steps") == [0, 0, 1, 1, 1]
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the NaN update was not applied


def test_k_nonfinite_steps_in_a_row_stop_the_run_and_keep_the_last_checkpoint(accelerator, tmp_path):
    model = PoisonedModel(tiny_mamba(), poisoned=range(5, 100))
    settings = dict(max_steps=20, save_every=2, max_nonfinite_steps=3)
    trainer = tiny_trainer(accelerator, tmp_path, model=model, **settings)
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive steps .*/step_00000004 is intact"):
        trainer.fit()
    assert [c.name for c in list_checkpoints(tmp_path)] == ["step_00000004", "step_00000002"]
    assert find_latest_checkpoint(tmp_path).name == "step_00000004"
    weights = load_tensors(find_latest_checkpoint(tmp_path) / "model.safetensors")
    assert weights and all(torch.isfinite(t).all() for t in weights.values())


class EvalOverflowModel(nn.Module):
    """Wraps an LM and a BatchNorm-like buffer: in evaluation mode the loss is NaN, as a model whose
    BatchNorm running variance overflowed while training (batch statistics) stayed finite."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.register_buffer("running_var", torch.ones(3))

    def forward(self, input_ids, **kwargs):
        sums = self.model(input_ids, **kwargs)
        if self.training:
            return sums
        self.running_var.fill_(float("inf"))
        return sums._replace(loss_sum=sums.loss_sum * float("nan"))


def test_a_nonfinite_validation_loss_names_the_broken_state_and_training_goes_on(
    accelerator, tmp_path, capsys
):
    model = EvalOverflowModel(tiny_mamba())
    summary = tiny_trainer(accelerator, tmp_path, model=model, max_steps=4, eval_every=2).fit()
    assert summary.step == 4 and summary.skipped_steps == 0
    out = capsys.readouterr().out
    assert "the validation loss at step 2 is not finite: non-finite values in running_var" in out
    assert "BatchNorm running statistics" in out and "step 4 is not finite" in out


def test_the_nonfinite_validation_message_without_broken_state():
    from mamba_lm.trainer.loop import nonfinite_validation_message

    text = nonfinite_validation_message(7, tiny_mamba())
    assert "step 7" in text and "every parameter and buffer is finite" in text and "BatchNorm" not in text
