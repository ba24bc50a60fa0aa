"""`python train.py` end to end, on the real data modules and configs (small models, few steps)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from mamba_lm.trainer import load_model
from mamba_lm.trainer.checkpoint import list_checkpoints
from mamba_lm.trainer.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> Path:
    """One data cache for this module's runs (the embedded corpus is built once)."""
    return tmp_path_factory.mktemp("data_cache")


def train(run_dir: Path, data_cache: Path, *overrides: str, check: bool = True):
    """Run train.py; on a hang, SIGABRT makes faulthandler print every thread's stack into the failure."""
    env = dict(os.environ, MAMBA_LM_CACHE=str(data_cache), OMP_NUM_THREADS="1", WANDB_SILENT="true")
    flags = [o for o in overrides if o.startswith("-")]  # e.g. -m, which must precede the overrides
    overrides = [o for o in overrides if not o.startswith("-")]
    command = [sys.executable, "-X", "faulthandler", str(REPO / "train.py"), *flags]
    command += [f"hydra.run.dir={run_dir}", "trainer.progress_bar=false", *overrides]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process = subprocess.Popen(command, env=env, cwd=REPO, **pipes)
    try:
        stdout, stderr = process.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stdout, stderr = process.communicate()
        pytest.fail(f"train.py hung:\n{stdout[-3000:]}\n{stderr[-8000:]}")
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_default_run_short_version(tmp_path, data_cache):
    """The default command (embedded corpus, wandb offline) with a tiny model and few steps."""
    run = tmp_path / "run"
    settings = ["trainer.max_steps=30", "trainer.eval_every=15", "optim.lr=5e-3"]
    train(run, data_cache, "model=mamba_tiny", *settings)
    records = read_metrics(run / "metrics.jsonl")
    losses = [r["loss"] for r in records]
    assert losses[-1] < losses[0] - 1.0, losses  # visibly down from ~ln(4096) = 8.3
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(val) == 2 and val[1] < val[0]
    assert [c.name for c in list_checkpoints(run)] == ["step_00000030"]
    with Image.open(run / "plots" / "loss.png") as image:
        assert image.size[0] > 300
    assert (run / "tokenizer.json").is_file() and list((run / "wandb").glob("offline-run-*"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["arch"] == "mamba" and config["model"]["vocab_size"] == 4096  # the data's
    model, run_config = load_model(run)
    assert run_config["data"]["name"] == "embedded" and model.config.vocab_size == 4096

    again = train(run, data_cache, "model=mamba_tiny", "trainer.max_steps=32", "logger=none")
    assert "resumed from" in again.stdout + again.stderr
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")][-2:] == [30, 32]  # log_every 5, final


def test_transformer_baseline_run(tmp_path, data_cache):
    run = tmp_path / "run"
    train(run, data_cache, "model=transformer_tiny", "trainer.max_steps=20", "logger=none", "optim.lr=5e-3")
    losses = [r["loss"] for r in read_metrics(run / "metrics.jsonl")]
    assert losses[-1] < losses[0] - 1.0, losses
    model, run_config = load_model(run)
    assert run_config["model"]["arch"] == "transformer" and type(model).__name__ == "TransformerLMHeadModel"


def test_classification_run_logs_validation_accuracy(tmp_path, data_cache):
    run = tmp_path / "run"
    train(run, data_cache, "experiment=lra/quick/listops", "trainer.max_steps=8", "trainer.log_every=4")
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [4, 8]
    assert 0.0 <= records[-1]["val_accuracy"] <= 1.0 and records[-1]["val_loss"] > 0
    _, run_config = load_model(run)
    assert run_config["model"]["arch"] == "classifier" and run_config["model"]["num_classes"] == 10


def test_sweep_makes_one_run_folder_each(tmp_path, data_cache):
    sweep = tmp_path / "sweep"
    env_overrides = ["logger=none", "trainer.max_steps=2", "trainer.eval_every=0", f"hydra.sweep.dir={sweep}"]
    result = train(tmp_path / "unused", data_cache, "-m", "model=mamba_tiny,transformer_tiny", *env_overrides)
    folders = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in folders] == ["0", "1"], result.stdout
    configs = [json.loads((list_checkpoints(f)[0] / "run_config.json").read_text()) for f in folders]
    archs = [config["model"]["arch"] for config in configs]
    assert archs == ["mamba", "transformer"]


def test_a_misspelled_key_fails_before_any_work(tmp_path, data_cache):
    result = train(tmp_path / "run", data_cache, "trainer.max_step=5", check=False)
    assert result.returncode != 0
    assert "trainer.max_step" in result.stderr and "max_step' not in 'TrainerConfig'" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_sigterm_saves_a_checkpoint_and_exits_with_143(tmp_path, data_cache):
    """A job script sees a run stopped by SIGTERM (status 128 + 15) apart from a finished one (status 0)."""
    run = tmp_path / "run"
    env = dict(os.environ, MAMBA_LM_CACHE=str(data_cache), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run}", "model=mamba_tiny"]
    command += ["logger=none", "trainer.max_steps=100000", "trainer.log_every=1", "trainer.eval_every=0"]
    command += ["trainer.progress_bar=false", "trainer.plots=false"]
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = subprocess.Popen(command, env=env, cwd=REPO, **pipes)
    deadline = time.time() + 300
    while len(read_metrics(run / "metrics.jsonl")) < 2:
        assert process.poll() is None and time.time() < deadline, process.communicate()[0][-4000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM == 143, output[-4000:]
    stopped_at = read_metrics(run / "metrics.jsonl")[-1]["step"]
    assert f"stopped by SIGTERM at step {stopped_at}" in output
    assert [c.name for c in list_checkpoints(run)] == [f"step_{stopped_at:08d}"]


def error_lines(result) -> list[str]:
    """The lines of stderr that are not log records (Hydra's log lines start with '[')."""
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("[")]


def test_a_refused_resume_leaves_the_run_folder_as_it_was(tmp_path, data_cache):
    """Another model, another data.seqlen, every checkpoint damaged: refused before any file is written
    (Hydra's record of the command in .hydra/ too: the training command writes it once a run is accepted)."""
    run = tmp_path / "run"
    quick = ["logger=none", "trainer.eval_every=0", "trainer.plots=false"]
    train(run, data_cache, "model=mamba_tiny", "trainer.max_steps=2", *quick)
    kept = ("config.yaml", "tokenizer.json", "metrics.jsonl", ".hydra/hydra.yaml", ".hydra/overrides.yaml")
    before = {name: (run / name).read_bytes() for name in kept}
    assert yaml.safe_load(before[".hydra/hydra.yaml"])["hydra"]["runtime"]["choices"]["model"] == "mamba_tiny"
    (checkpoint,) = list_checkpoints(run)
    weights = (checkpoint / "model.safetensors").read_bytes()

    refusals = [
        (["model=transformer_tiny"], "holds another model than this run builds"),
        (["model=mamba_tiny", "data.seqlen=64"], "was saved by a run on other data"),
    ]
    for overrides, message in refusals:
        result = train(run, data_cache, *overrides, "trainer.max_steps=4", *quick, check=False)
        assert result.returncode == 1, result.stderr[-3000:]
        (line,) = error_lines(result)
        assert line.startswith(f"error: checkpoint {checkpoint} ") and message in line
        assert {name: (run / name).read_bytes() for name in kept} == before, overrides
    (checkpoint / "model.safetensors").write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))
    result = train(run, data_cache, "model=mamba_tiny", "trainer.max_steps=4", *quick, check=False)
    assert result.returncode == 1 and "error: resume=auto found no valid checkpoint" in result.stderr
    assert {name: (run / name).read_bytes() for name in kept} == before


def test_errors_are_one_line_and_a_refused_new_folder_is_not_left_behind(tmp_path, data_cache):
    run = tmp_path / "new"
    result = train(run, data_cache, "trainer.max_steps=0", check=False)
    assert result.returncode == 1
    assert error_lines(result) == ["error: config key 'trainer.max_steps' must be >= 1, got 0"]
    assert not run.exists()  # Hydra had made it; the refused run removed it again

    result = train(run, data_cache, "model=mamba_tiny", f"resume={tmp_path / 'nothing'}", check=False)
    assert error_lines(result) == [f"error: checkpoint path {tmp_path / 'nothing'} does not exist"]
    assert result.returncode == 1 and not run.exists()

    (tmp_path / "a_file").write_text("")
    result = train(tmp_path / "a_file" / "run", data_cache, check=False)
    assert result.returncode == 1
    assert error_lines(result)[0].startswith("error: cannot use hydra.run.dir as the run folder: [Errno 20]")

    env = dict(os.environ, MAMBA_LM_DEBUG="1", MAMBA_LM_CACHE=str(data_cache))
    command = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run}", "trainer.max_steps=0"]
    debug = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ValueError" in debug.stderr
