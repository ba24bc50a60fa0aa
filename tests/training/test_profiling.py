"""trainer.profile_steps: the run profiles its own steps after a warm-up and writes RUN_DIR/profile.txt."""

from __future__ import annotations

import pytest
from helpers import tiny_trainer

from mamba_lm.trainer import TrainerConfig
from mamba_lm.trainer.profiling import PROFILE_FILE, WARMUP_STEPS


def test_profile_of_the_steps_after_the_warm_up(accelerator, tmp_path, capsys):
    summary = tiny_trainer(accelerator, tmp_path, max_steps=WARMUP_STEPS + 4, profile_steps=2).fit()
    assert summary.step == WARMUP_STEPS + 4  # profiling does not change the run
    text = (tmp_path / PROFILE_FILE).read_text()
    assert text.startswith(
        f"2 training steps after {WARMUP_STEPS} warm-up steps, sorted by self_cpu_time_total"
    )
    assert "aten::" in text and "Self CPU" in text  # the operators the steps ran
    assert f"profile of 2 steps written to {tmp_path / PROFILE_FILE}" in capsys.readouterr().out


def test_a_run_that_ends_mid_profile_writes_what_it_profiled(accelerator, tmp_path, capsys):
    tiny_trainer(accelerator, tmp_path, max_steps=WARMUP_STEPS + 1, profile_steps=10).fit()
    assert (tmp_path / PROFILE_FILE).read_text().startswith("1 training steps after")
    assert "profile cut short by the run's end" in capsys.readouterr().out


def test_no_profile_by_default_and_negative_counts_refused(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, max_steps=WARMUP_STEPS + 2).fit()
    assert not (tmp_path / PROFILE_FILE).exists()
    with pytest.raises(ValueError, match="trainer.profile_steps"):
        TrainerConfig(profile_steps=-1)
