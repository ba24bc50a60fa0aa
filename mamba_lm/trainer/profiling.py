"""``trainer.profile_steps=N``: where a run's training step spends its time, from the run itself.

After ``WARMUP_STEPS`` steps of the run (allocator, autotuning and CUDA-graph capture done), the next N
steps run under ``torch.profiler``; the table of operators and kernels by self time (device time where a
GPU ran them, else CPU time) is written to ``RUN_DIR/profile.txt``. Only the main process profiles. The
steps are the run's own: any experiment, with its real data, precision and step (eager or graphed).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..files import atomic_write_text

PROFILE_FILE = "profile.txt"
"""The table's name in the run folder."""
WARMUP_STEPS = 5
"""Steps of the run (from where it started or resumed) before profiling starts."""
TABLE_ROWS = 40


class StepProfiler:
    """Profiles steps ``WARMUP_STEPS + 1 .. WARMUP_STEPS + steps``, counted from the first ``before_step``."""

    def __init__(self, steps: int, out_file: Path, on_cuda: bool):
        self.steps, self.out_file, self.on_cuda = steps, Path(out_file), on_cuda
        self.seen = 0  # steps started since this process began training
        self.profile: torch.profiler.profile | None = None

    def before_step(self) -> None:
        if self.seen == WARMUP_STEPS and self.profile is None:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.on_cuda:
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self.profile = torch.profiler.profile(activities=activities)
            self.profile.start()
        self.seen += 1

    def after_step(self) -> Path | None:
        """Ends the profile after its last step and writes the table; returns the file then."""
        if self.profile is None or self.seen != WARMUP_STEPS + self.steps:
            return None
        return self._finish()

    def close(self) -> Path | None:
        """A run that ends mid-profile writes what it has (returns None when nothing was profiled)."""
        return self._finish() if self.profile is not None else None

    def _finish(self) -> Path:
        if self.on_cuda:
            torch.cuda.synchronize()
        self.profile.stop()
        profiled = self.seen - WARMUP_STEPS
        sort_by = "self_device_time_total" if self.on_cuda else "self_cpu_time_total"
        table = self.profile.key_averages().table(
            sort_by=sort_by, row_limit=TABLE_ROWS, max_name_column_width=80
        )
        self.profile = None
        header = f"{profiled} training steps after {WARMUP_STEPS} warm-up steps, sorted by {sort_by}\n\n"
        return atomic_write_text(self.out_file, header + table + "\n")
