"""Runs of ``multi_process_run.py`` on one process or several through ``accelerate launch``, for the
multi-process (CPU, gloo) and multi-GPU tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mamba_lm.trainer.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("multi_process_run.py")
CPU_DDP = REPO / "configs" / "accelerate" / "cpu_ddp.yaml"


def train(
    run_dir: Path,
    data: dict,
    processes: int,
    port: int,
    succeed: bool = True,
    config: Path = CPU_DDP,
    timeout: int = 600,
    **options,
) -> str:
    """One run of the worker on ``processes`` processes (one: started directly; more: ``accelerate launch``
    with ``config``); ``options`` become its flags. Returns its output, asserting it succeeded (or, with
    ``succeed=False``, failed)."""
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    worker = [str(WORKER), str(run_dir), "--data", json.dumps(data), *flags]
    if processes == 1:
        command = [sys.executable, *worker]
    else:
        launch = ["-m", "accelerate.commands.launch", "--config_file", str(config)]
        launch += ["--num_processes", str(processes), "--main_process_port", str(port)]
        command = [sys.executable, *launch, *worker]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert (result.returncode == 0) == succeed, output
    return output


def losses(run_dir: Path) -> list[float]:
    """The logged loss of every step of the run folder."""
    return [record["loss"] for record in read_metrics(run_dir / "metrics.jsonl")]
