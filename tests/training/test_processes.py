"""Runs in processes of their own: SIGTERM handling, and two data-parallel ranks through accelerate launch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import random_words_corpus

from mamba_lm.trainer.checkpoint import list_checkpoints
from mamba_lm.trainer.metrics import read_metrics
from mamba_lm.trainer.signals import exit_status

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("tiny_run.py")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    command = [sys.executable, str(WORKER), str(tmp_path), "--max-steps", "10000", "--save-every", "1000"]
    command += ["--batch-delay", "0.05"]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = subprocess.Popen(command, env=_env(), **pipes)
    deadline = time.time() + 120
    while len(read_metrics(tmp_path / "metrics.jsonl")) < 3:
        assert process.poll() is None and time.time() < deadline, process.communicate()[0]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    report = json.loads((tmp_path / "rank0.json").read_text())
    stopped_at = report["step"]
    assert report["stopped_by_signal"] == "SIGTERM" and 3 <= stopped_at < 10000
    assert f"stopped by SIGTERM at step {stopped_at}" in output
    assert [c.name for c in list_checkpoints(tmp_path)] == [f"step_{stopped_at:08d}"]
    assert read_metrics(tmp_path / "metrics.jsonl")[-1]["step"] == stopped_at

    resumed = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), "--max-steps", str(stopped_at + 2)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert steps == list(range(1, stopped_at + 3))


def test_exit_status_after_a_stop_follows_the_shell_convention():
    assert exit_status(None) == 0  # finished
    assert exit_status("SIGTERM") == 143 and exit_status("SIGINT") == 130
    assert exit_status("a signal on another process") == 143  # the stop came from another rank


def _small_corpus(folder: Path) -> dict:
    return random_words_corpus(folder, "ddp_test", documents=300, words=80)


def test_two_ranks_through_accelerate_launch(tmp_path):
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "configs" / "accelerate" / "cpu_ddp.yaml"),
        "--main_process_port",
        "29517",
    ]
    data = json.dumps(_small_corpus(tmp_path))
    command = [*launch, str(WORKER), str(tmp_path), "--max-steps", "4", "--save-every", "2", "--data", data]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["weights"] == reports[1]["weights"]  # DDP kept the replicas identical
    assert len(reports[0]["rows"]) == len(reports[1]["rows"]) == 4 * 4
    assert not set(reports[0]["rows"]) & set(reports[1]["rows"])  # each rank read its own blocks
    state = json.loads((list_checkpoints(tmp_path)[0] / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(state["ranks"]) == 2

    command[command.index("--max-steps") + 1] = "6"  # resume both ranks from step 4
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    resumed = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["step"] for r in resumed] == [6, 6] and resumed[0]["weights"] == resumed[1]["weights"]
    assert len(resumed[0]["rows"]) == 2 * 4  # only steps 5 and 6 were trained
    assert not set(resumed[0]["rows"]) & set(reports[0]["rows"])  # the data continued, not restarted


def test_train_py_under_accelerate_launch_shares_one_run_folder(tmp_path):
    """train.py itself on two ranks, with Hydra's default timestamped folder (each rank composes its own)."""
    corpus = _small_corpus(tmp_path)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(REPO / "configs" / "accelerate" / "cpu_ddp.yaml"), "--main_process_port", "29518"]
    overrides = [
        "model=mamba_tiny",
        "data=local_files",
        f"data.dataset.files=[{corpus['dataset']['files'][0]}]",
        "data.tokenizer.vocab_size=300",
        "data.seqlen=16",
        f"data.cache_dir={corpus['cache_dir']}",
        "logger=none",
        "trainer.max_steps=3",
        "trainer.micro_batch_size=2",
        "trainer.progress_bar=false",
    ]
    command = [*launch, str(REPO / "train.py"), *overrides]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dirs = [p.parent for p in (tmp_path / "outputs").glob("*/*/config.yaml")]
    assert len(run_dirs) == 1 and not [p for p in (tmp_path / "outputs").glob("*/*") if p not in run_dirs]
    run = run_dirs[0]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [3]  # logged once, by the main rank
    assert "val_loss" in read_metrics(run / "metrics.jsonl")[0]
    state = json.loads((list_checkpoints(run)[0] / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(state["ranks"]) == 2  # each rank's loader and RNG state
