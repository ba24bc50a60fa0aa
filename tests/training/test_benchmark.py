"""benchmarks/train_throughput.py runs without Hydra, OmegaConf, datasets, wandb (as on the GPU machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Make those packages unimportable, then run the benchmark script as __main__ with the given argv.
RUN_WITHOUT = """
import runpy, sys
for name in ("hydra", "omegaconf", "datasets", "wandb"):
    sys.modules[name] = None  # import fails, importlib.util.find_spec says absent: as if not installed
script, *sys.argv[1:] = sys.argv[1:]
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")
"""


SCRIPT = str(REPO / "benchmarks" / "train_throughput.py")


def run(command: list[str]) -> subprocess.CompletedProcess:
    """Run ``command`` in the repository (one thread per process), asserting it succeeded."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_throughput_benchmark_on_cpu_without_hydra_datasets_wandb(tmp_path):
    out = tmp_path / "throughput.json"
    args = ["--device", "cpu", "--precision", "fp32", "--models", "mamba_tiny,transformer_tiny"]
    args += ["--shapes", "32x2", "--steps", "1", "--warmup", "1", "--out", str(out)]
    result = run([sys.executable, "-c", RUN_WITHOUT, SCRIPT, *args])
    report = json.loads(out.read_text())
    assert [(r["model"], r["seqlen"], r["batch"]) for r in report["results"]] == [
        ("mamba_tiny", 32, 2),
        ("transformer_tiny", 32, 2),
    ]
    assert all(r["tokens_per_s"] > 0 and r["error"] is None for r in report["results"])
    assert "tokens/s" in result.stdout and "MFU" in result.stdout


def test_throughput_benchmark_on_two_processes_reports_per_process_numbers(tmp_path):
    """Under accelerate launch (two CPU processes over gloo here; DDP/FSDP GPUs on a multi-GPU machine) the
    main process alone writes, with every process's tokens/s gathered, and compares with a one-process run."""
    common = ["--device", "cpu", "--precision", "fp32", "--models", "mamba_tiny", "--shapes", "32x2"]
    common += ["--steps", "1", "--warmup", "1"]
    run([sys.executable, SCRIPT, *common, "--out", str(tmp_path / "one.json")])
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(REPO / "configs" / "accelerate" / "cpu_ddp.yaml"), "--main_process_port", "29613"]
    compare = ["--out", str(tmp_path / "two.json"), "--compare", str(tmp_path / "one.json")]
    two = run([*launch, SCRIPT, *common, *compare])
    report = json.loads((tmp_path / "two.json").read_text())
    assert report["processes"] == 2 and "MULTI_CPU" in report["distributed_type"]
    row = report["results"][0]
    assert row["processes"] == 2 and 0 < row["slowest_tokens_per_s"] <= row["tokens_per_s"]
    assert two.stdout.count("wrote ") == 1  # the main process only
    assert "mamba_tiny fused 32 x 2: " in two.stdout and "x one.json's tokens/s per process" in two.stdout


def test_lra_step_benchmark_times_its_variants_on_the_same_batches(tmp_path):
    """benchmarks/lra_step.py on the CPU with the quick ListOps experiment: every variant's first loss
    equals eager's (the same weights and batch), and the table lists each."""
    script = str(REPO / "benchmarks" / "lra_step.py")
    args = ["--experiment", "lra/quick/listops", "--device", "cpu", "--variants", "eager,torch-kernels,fp32"]
    args += ["--warmup", "1", "--steps", "1", f"data.cache_dir={tmp_path / 'cache'}"]
    result = run([sys.executable, script, *args])
    lines = result.stdout.splitlines()
    losses = {
        line.split(":")[0]: line.split("first loss ")[1].split(",")[0]
        for line in lines
        if "first loss" in line
    }
    assert set(losses) == {"eager", "torch-kernels", "fp32"}
    assert len(set(losses.values())) == 1  # no Triton and no TF32 on this CPU: the same function
    assert lines[-4].split() == ["variant", "ms/step", "steps/s", "vs", "eager"]
    assert [line.split()[0] for line in lines[-3:]] == ["eager", "torch-kernels", "fp32"]
