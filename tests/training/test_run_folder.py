"""The run folder: atomic writes with normal permissions, one metrics reader, checkpoints that are never
silently replaced, unreadable checkpoint files named in one line, and the lock (two real processes)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tiny_trainer

from mamba_lm.files import (
    atomic_copy,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    atomic_write_with,
)
from mamba_lm.trainer import CheckpointError, RunFolder, find_run_folder, load_checkpoint, load_model
from mamba_lm.trainer.checkpoint import list_checkpoints
from mamba_lm.trainer.run_folder import read_metrics
from mamba_lm.trainer.state_io import write_manifest

TINY_RUN = Path(__file__).parent / "tiny_run.py"


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_private(path: Path, data: bytes = b"x") -> None:
    """A writer that creates its file 0600 (as mkstemp and safetensors do)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(data)


def test_atomic_writes_give_files_normal_permissions_and_leave_no_temporaries(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "text")
    atomic_write_json(tmp_path / "b.json", {"x": 1})
    atomic_copy(tmp_path / "a.txt", tmp_path / "c.txt")
    atomic_write_with(tmp_path / "d.bin", write_private)
    for name in ("a.txt", "b.json", "c.txt", "d.bin"):
        assert mode(tmp_path / name) == 0o644, name
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 1}
    assert (tmp_path / "c.txt").read_text() == "text"

    def failing(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(tmp_path / "a.txt", failing)
    assert (tmp_path / "a.txt").read_text() == "text"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.txt", "d.bin"]


def test_atomic_directory_replaces_only_what_may_be_replaced(tmp_path, umask_022):
    final = tmp_path / "step_00000001"
    with atomic_directory(final) as folder:
        write_private(folder / "weights", b"first")
        (folder / "nested").mkdir(mode=0o700)
        write_private(folder / "nested" / "file")
    assert mode(final) == 0o755 and mode(final / "nested") == 0o755
    assert mode(final / "weights") == 0o644 and mode(final / "nested" / "file") == 0o644

    ran = []
    refused = pytest.raises(FileExistsError, match="already exists and is complete")
    with refused, atomic_directory(final, replaceable=lambda existing: False):
        ran.append(True)
    assert not ran and (final / "weights").read_bytes() == b"first"

    killed = pytest.raises(RuntimeError, match="killed")
    with killed, atomic_directory(final, replaceable=lambda existing: True) as folder:
        (folder / "weights").write_bytes(b"half")
        raise RuntimeError("killed")
    assert (final / "weights").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000001"]  # no temporary folder left

    with atomic_directory(final, replaceable=lambda existing: True) as folder:
        (folder / "weights").write_bytes(b"second")
    assert (final / "weights").read_bytes() == b"second" and not (final / "nested").exists()


def test_checkpoint_files_are_0644_and_a_valid_checkpoint_is_never_replaced(accelerator, tmp_path, umask_022):
    trainer = tiny_trainer(accelerator, tmp_path, max_steps=3, save_every=3)
    trainer.fit()
    (checkpoint,) = list_checkpoints(tmp_path)
    assert {p.name: mode(p) for p in checkpoint.iterdir()} == {p.name: 0o644 for p in checkpoint.iterdir()}
    assert mode(checkpoint) == 0o755
    before = (checkpoint / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="step_00000003 already exists and is complete"):
        trainer._save()  # the same step again: the valid checkpoint stays
    assert (checkpoint / "model.safetensors").read_bytes() == before

    (checkpoint / "optimizer.json").write_text("{}")  # damaged: a new save of its step may replace it
    trainer._save()
    assert load_checkpoint(tmp_path).folder == checkpoint


def test_resume_from_an_older_checkpoint_refuses_when_newer_ones_would_be_met(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, max_steps=6, save_every=3, keep_last=5).fit()
    newest, older = list_checkpoints(tmp_path)
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    with pytest.raises(CheckpointError, match=r"newer than resume=.*step_00000003 \(step_00000006\)"):
        tiny_trainer(accelerator, tmp_path, max_steps=9, resume=str(older)).fit()
    assert (tmp_path / "metrics.jsonl").read_bytes() == metrics


def test_a_model_file_that_is_not_safetensors_is_one_line_naming_it(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, max_steps=3, save_every=3).fit()
    (checkpoint,) = list_checkpoints(tmp_path)
    (checkpoint / "model.safetensors").write_bytes(b"this is not a safetensors file at all")
    write_manifest(checkpoint, 3)  # the manifest agrees: only reading the file can tell
    with pytest.raises(CheckpointError) as caught:
        load_model(tmp_path)
    message = str(caught.value)
    assert f"{checkpoint / 'model.safetensors'} is not a readable safetensors file" in message
    assert "\n" not in message


def test_one_metrics_reader_skips_a_cut_last_line_and_names_a_damaged_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 2.0}]
    path.write_text('{"step": 1, "loss": 2.0}\n[1, 2]\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2 is not a metrics record"):
        read_metrics(path)
    assert read_metrics(tmp_path / "missing.jsonl") == []

    # a resumed run rewrites a cut last line away, so its own records stay whole lines
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
    RunFolder(tmp_path).drop_metrics_after(5)
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    RunFolder(tmp_path).drop_metrics_after(1)
    assert read_metrics(path) == [{"step": 1}]


def test_the_run_folder_is_found_from_a_checkpoint_and_read_by_one_reader(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path / "run", max_steps=3, save_every=3).fit()
    (checkpoint,) = list_checkpoints(tmp_path / "run")
    found = find_run_folder(checkpoint)
    assert found is not None and found.path == tmp_path / "run"
    assert [r["step"] for r in found.read_metrics()] == [1, 2, 3]
    assert found.result_file("perplexity") == tmp_path / "run" / "eval" / "perplexity.json"
    assert find_run_folder(tmp_path / "elsewhere") is None


def start_tiny_run(run: Path, *arguments: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, str(TINY_RUN), str(run), *arguments]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_run_on_a_folder_is_refused_and_a_killed_run_leaves_it_free(tmp_path):
    run = tmp_path / "run"
    first = start_tiny_run(run, "--max-steps", "100000", "--save-every", "2", "--batch-delay", "0.05")
    try:
        deadline = time.time() + 300
        while not list_checkpoints(run):  # the first run is training and holds the lock
            assert first.poll() is None and time.time() < deadline, first.communicate()[0][-3000:]
            time.sleep(0.2)
        second = start_tiny_run(run, "--max-steps", "2")
        output, _ = second.communicate(timeout=300)
        assert second.returncode != 0
        assert f"run folder {run} is in use by another run (pid {first.pid} on host" in output
        assert first.poll() is None  # the refused start changed nothing for the running one
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no clean-up runs
        first.communicate(timeout=60)
    newest = list_checkpoints(run)[0]
    step = int(newest.name.removeprefix("step_"))
    third = start_tiny_run(run, "--max-steps", str(step + 2), "--save-every", "2")
    output, _ = third.communicate(timeout=300)
    assert third.returncode == 0, output[-3000:]
    assert f"resumed from {newest} at step {step}" in output
    assert json.loads((run / "run.lock").read_text())["pid"] == third.pid
