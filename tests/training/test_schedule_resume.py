"""The lr schedule on resume: a run keeps the plan it started with unless asked to re-plan (issue 13, 7)."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers import CountingLoader, logged, tiny_trainer

from mamba_lm.trainer.config import OptimConfig
from mamba_lm.trainer.optim import PLAN_KEY, LRSchedule

PEAK, MIN_LR, WARMUP = 3e-3, 1e-5, 2  # tiny_trainer's optimizer settings


class CrashingLoader(CountingLoader):
    """Raises while fetching batch number ``at`` (the run's last checkpoint is the one before)."""

    def __init__(self, batch_size: int, at: int):
        super().__init__(batch_size)
        self.at = at

    def __next__(self):
        if self.position == self.at:
            raise RuntimeError("simulated crash")
        return super().__next__()


def _crash_at_step_4_of_10(accelerator, run_dir) -> None:
    loader = CrashingLoader(4, at=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        tiny_trainer(accelerator, run_dir, loader=loader, max_steps=10, save_every=4).fit()


def test_resume_with_more_steps_keeps_the_planned_schedule(accelerator, tmp_path, caplog):
    planned = LRSchedule(PEAK, MIN_LR, WARMUP, 10)
    _crash_at_step_4_of_10(accelerator, tmp_path)
    with caplog.at_level(logging.WARNING, logger="mamba_lm.trainer.optim"):
        tiny_trainer(accelerator, tmp_path, max_steps=20, save_every=4).fit()
    lrs = logged(tmp_path, "lr")  # one record per step 1..20; update k (0-based) is logged at step k + 1
    assert len(lrs) == 20
    assert lrs[4] == pytest.approx(planned.lr(4))  # the resume step: what the original run would have had
    assert lrs == pytest.approx([planned.lr(k) for k in range(20)])
    assert lrs[10:] == pytest.approx([MIN_LR] * 10)  # past the planned end: min_lr
    (line,) = [r.getMessage() for r in caplog.records if "lr schedule" in r.getMessage()]
    assert "kept as the run planned it" in line and "steps 11-20 train at min_lr 1e-05" in line
    assert "optim.replan_schedule=true" in line


def test_replan_starts_the_cosine_again_from_the_resume_step(accelerator, tmp_path, caplog):
    planned = LRSchedule(PEAK, MIN_LR, WARMUP, 10)
    _crash_at_step_4_of_10(accelerator, tmp_path)
    trainer = tiny_trainer(accelerator, tmp_path, max_steps=20, save_every=4)
    trainer.optim_config = OptimConfig(lr=PEAK, warmup_steps=WARMUP, replan_schedule=True)
    with caplog.at_level(logging.WARNING, logger="mamba_lm.trainer.optim"):
        trainer.fit()
    lrs = logged(tmp_path, "lr")
    assert lrs[:5] == pytest.approx([planned.lr(k) for k in range(5)])  # no jump at the resume step
    replanned = LRSchedule(PEAK, MIN_LR, WARMUP, 20, decay_start_step=4, decay_start_lr=planned.lr(4))
    assert lrs[4:] == pytest.approx([replanned.lr(k) for k in range(4, 20)])  # one cosine from 4 to 20
    assert replanned.lr(20) == pytest.approx(MIN_LR)
    assert all(a > b for a, b in zip(lrs[4:19], lrs[5:20]))
    assert any("re-planned at step 4" in r.getMessage() for r in caplog.records)


def test_an_uninterrupted_run_logs_nothing_and_stores_its_plan(accelerator, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mamba_lm.trainer.optim"):
        trainer = tiny_trainer(accelerator, tmp_path, max_steps=4)
        trainer.fit()
    assert not [r for r in caplog.records if "lr schedule" in r.getMessage()]
    plan = trainer.optimizer.param_groups[0][PLAN_KEY]
    assert plan == LRSchedule(PEAK, MIN_LR, WARMUP, 4).state_dict()


def test_past_the_planned_end_is_min_lr_even_when_the_warmup_was_longer_than_the_run():
    planned = LRSchedule(PEAK, MIN_LR, warmup_steps=10, max_steps=6)
    assert planned.lr(5) == pytest.approx(PEAK * 6 / 10)
    assert planned.lr(6) == planned.lr(50) == MIN_LR


def test_plan_round_trips_and_scales_with_the_groups():
    schedule = LRSchedule(2e-3, 1e-5, 0, 100, decay_start_step=40, decay_start_lr=1e-3)
    copy = LRSchedule(1.0, 0.0, 0, 1)
    copy.load_state_dict(schedule.state_dict())
    assert [copy.lr(s) for s in (0, 40, 70, 100, 150)] == [schedule.lr(s) for s in (0, 40, 70, 100, 150)]
    assert schedule.lr(40) == pytest.approx(1e-3) and schedule.lr(100) == pytest.approx(1e-5)
    optimizer = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))], "initial_lr": 4e-3}])
    optimizer.param_groups[0][PLAN_KEY] = schedule.state_dict()  # as a resumed optimizer carries it
    fresh = LRSchedule(2e-3, 1e-5, 0, 500)
    assert fresh.apply(optimizer, 70) == pytest.approx(schedule.lr(70))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2 * schedule.lr(70))
