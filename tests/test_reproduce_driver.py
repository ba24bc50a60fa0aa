"""benchmarks/reproduce.py: the lanes name real experiment configs, and --pack keeps what the next machine
needs (every run's records, the latest checkpoint of small runs only)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from mamba_lm.trainer.state_io import write_manifest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("reproduce", REPO / "benchmarks" / "reproduce.py")
reproduce = importlib.util.module_from_spec(spec)
sys.modules["reproduce"] = reproduce  # dataclasses look their module up there
spec.loader.exec_module(reproduce)


def test_every_run_names_an_experiment_config_that_exists():
    for run in reproduce.all_runs().values():
        experiment = next(o for o in run.overrides if o.startswith("experiment=")).removeprefix("experiment=")
        assert (REPO / "configs" / "experiment" / f"{experiment}.yaml").is_file(), run.name


def make_run(root: Path, name: str, checkpoint_bytes: int) -> None:
    run = root / name
    for step in ("step_00000010", "step_00000020"):
        (run / "checkpoints" / step).mkdir(parents=True)
        (run / "checkpoints" / step / "model.safetensors").write_bytes(b"x" * checkpoint_bytes)
    (run / "eval").mkdir()
    (run / "eval" / "synthetic.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 20}\n')


def test_pack_keeps_records_and_only_small_latest_checkpoints(tmp_path):
    """A finished run with large checkpoints travels as its records; an unfinished one is left out: it
    restarts from step 0 on the next machine, and its partial curve would read as a result."""
    root = tmp_path / "repro"
    make_run(root, "induction_heads", checkpoint_bytes=1000)
    make_run(root, "scaling_mamba_l", checkpoint_bytes=3 * 2**20)
    make_run(root, "scaling_mamba_m", checkpoint_bytes=3 * 2**20)
    reproduce.write_status(root, {"scaling_mamba_l": "done", "scaling_mamba_m": "stopped"})
    kept = reproduce.pack(root, tmp_path / "repro.tgz", max_checkpoint_mb=1.0)
    with tarfile.open(tmp_path / "repro.tgz") as archive:
        names = set(archive.getnames())
    assert kept == ["induction_heads"]
    assert "status.json" in names
    for run in ("induction_heads", "scaling_mamba_l"):
        assert f"{run}/metrics.jsonl" in names and f"{run}/eval/synthetic.json" in names
    assert "induction_heads/checkpoints/step_00000020/model.safetensors" in names
    assert "induction_heads/checkpoints/step_00000010/model.safetensors" not in names
    assert not any(name.startswith("scaling_mamba_l/checkpoints/") for name in names)
    assert not any(name.startswith("scaling_mamba_m/") for name in names)


def test_a_run_whose_newest_checkpoint_is_at_its_max_steps_is_done_whatever_its_exit_code(tmp_path):
    """The deadline's SIGTERM can reach a run that has just saved its last checkpoint and is exiting: the
    run is done (the next driver evaluates it, not trains it); a drivers' earlier status is reconciled."""
    root = tmp_path / "repro"
    make_run(root, "lra_mamba_pathfinder_mean", checkpoint_bytes=10)  # checkpoints at steps 10 and 20
    run_dir = root / "lra_mamba_pathfinder_mean"
    for max_steps, killed, crashed in ((20, "done", "done"), (30, "stopped", "exit -15")):
        (run_dir / "config.yaml").write_text(f"trainer:\n  max_steps: {max_steps}\n")
        assert reproduce.run_state(run_dir, 143) == killed
        assert reproduce.run_state(run_dir, -15) == crashed
        assert reproduce.run_state(run_dir, 0) == "done"
    assert reproduce.run_state(root / "not_started", 143) == "stopped"  # no folder, no config
    reproduce.write_status(root, {"lra_mamba_pathfinder_mean": "exit -15", "selective_copying": "stopped"})
    assert reproduce.reconcile_status(root) == []  # max_steps 30: not reached
    (run_dir / "config.yaml").write_text("trainer:\n  max_steps: 20\n")
    assert reproduce.reconcile_status(root) == ["lra_mamba_pathfinder_mean"]
    assert reproduce.read_status(root) == {
        "lra_mamba_pathfinder_mean": "done",
        "selective_copying": "stopped",
    }


def test_pack_carries_the_best_validation_checkpoint_beside_the_newest(tmp_path):
    root = tmp_path / "repro"
    make_run(root, "lra_s4_listops", checkpoint_bytes=1000)
    for step in (10, 20):  # complete checkpoints: the required files and a manifest of them
        folder = root / "lra_s4_listops" / "checkpoints" / f"step_{step:08d}"
        (folder / "optimizer.safetensors").write_bytes(b"o")
        (folder / "optimizer.json").write_text("{}")
        (folder / "trainer_state.json").write_text(json.dumps({"step": step, "best_step": 10}))
        write_manifest(folder, step)
    assert reproduce.pack(root, tmp_path / "repro.tgz", max_checkpoint_mb=1.0) == ["lra_s4_listops"]
    with tarfile.open(tmp_path / "repro.tgz") as archive:
        names = set(archive.getnames())
    for step in ("step_00000010", "step_00000020"):
        assert f"lra_s4_listops/checkpoints/{step}/model.safetensors" in names


def test_a_done_run_evaluated_after_its_last_checkpoint_carries_no_checkpoint(tmp_path):
    """Its results are in eval/*.json and it trains no more; until then (not done, or its evaluation older
    than its newest checkpoint, e.g. a mid-run one) the newest checkpoint travels."""
    root = tmp_path / "repro"
    make_run(root, "lra_s4_listops", checkpoint_bytes=1000)
    evaluation = root / "lra_s4_listops" / "eval" / "synthetic.json"
    newest = root / "lra_s4_listops" / "checkpoints" / "step_00000020" / "model.safetensors"

    def packed_checkpoints(status: str) -> list[str]:
        reproduce.write_status(root, {"lra_s4_listops": status})
        reproduce.pack(root, tmp_path / "repro.tgz", max_checkpoint_mb=1.0)
        with tarfile.open(tmp_path / "repro.tgz") as archive:
            return [name for name in archive.getnames() if "/checkpoints/" in name]

    os.utime(evaluation, (1_000, 1_000))  # evaluated before the newest checkpoint was written
    assert packed_checkpoints("done") == ["lra_s4_listops/checkpoints/step_00000020/model.safetensors"]
    os.utime(evaluation, (newest.stat().st_mtime + 10,) * 2)  # evaluated after it
    assert packed_checkpoints("stopped") == ["lra_s4_listops/checkpoints/step_00000020/model.safetensors"]
    assert packed_checkpoints("done") == []
    with tarfile.open(tmp_path / "repro.tgz") as archive:
        assert "lra_s4_listops/eval/synthetic.json" in archive.getnames()


def test_the_lra_checkpoints_fit_the_default_pack_limit():
    """A pack that left an LRA run's checkpoint behind would lose the run with its machine: the weights and
    AdamW state (3 fp32 copies of the parameters) of each LRA lane's model must fit under PACK_MAX_MB."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mamba_lm.trainer import build_model_from_dict, config_dir
    from mamba_lm.trainer.config_store import register_configs

    register_configs()
    runs = reproduce.all_runs()
    names = [name for name in runs if name.startswith("lra_")]
    assert len(names) == 5
    for name in names:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = compose("train", overrides=list(runs[name].overrides))
        model = build_model_from_dict(OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True))
        checkpoint_mb = 3 * 4 * sum(p.numel() for p in model.parameters()) / 2**20
        assert 4 < checkpoint_mb < reproduce.PACK_MAX_MB - 1, (name, checkpoint_mb)


def test_later_overrides_apply_once_the_newest_checkpoint_reaches_their_step(tmp_path):
    run = reproduce.all_runs()["selective_copying"]
    switch_step, later = run.later
    assert "optim.replan_schedule=true" in later  # else the resumed run keeps its checkpoint's lr
    assert not any(o in reproduce.train_command(run, tmp_path) for o in later)  # a fresh run
    for step, switched in ((switch_step - 1, False), (switch_step, True), (switch_step + 500, True)):
        folder = tmp_path / str(step) / run.name / "checkpoints" / f"step_{step:08d}"
        folder.mkdir(parents=True)
        command = reproduce.train_command(run, tmp_path / str(step))
        assert all(o in command for o in later) == switched, step
        assert "optim.lr=1e-3" in command  # the first phase's override stays, the later one comes after it
        assert command.index("optim.lr=1e-3") < (command.index(later[0]) if switched else len(command))


def test_an_lra_run_is_evaluated_only_once_its_training_is_done(tmp_path, monkeypatch, capsys):
    """Its result is its last checkpoint's (decaying lr): a mid-run evaluation would read as the result."""
    commands = []
    monkeypatch.setattr(reproduce.subprocess, "run", lambda command, **kwargs: commands.append(command))
    root = tmp_path / "repro"
    root.mkdir()
    reproduce.write_status(root, {"lra_s4_listops": "stopped", "selective_copying": "stopped"})
    reproduce.evaluate(["lra_s4_listops", "selective_copying"], root, timeout_s=10)
    assert "lra_s4_listops: skipped, its training is not done (stopped)" in capsys.readouterr().out
    assert [command[3] for command in commands] == ["synthetic"]  # a constant-lr run: evaluated mid-run
    reproduce.write_status(root, {"lra_s4_listops": "done"})
    reproduce.evaluate(["lra_s4_listops"], root, timeout_s=10)
    assert commands[-1][3:] == ["lra", str(root / "lra_s4_listops")]


def test_the_driver_runs_as_a_script_from_a_checkout_where_the_package_is_not_installed(tmp_path):
    """The GPU machine runs `python3 benchmarks/reproduce.py` from an unpacked `git archive`, with no
    `pip install -e .`: the script must find the package beside it. `-S` drops the editable install's .pth
    hook; PYTHONPATH keeps the third-party packages (torch) importable."""
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin"}
    script = REPO / "benchmarks" / "reproduce.py"
    done = subprocess.run(
        [sys.executable, "-S", str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--minutes" in done.stdout


def test_drivers_of_different_lanes_can_share_a_root(tmp_path, monkeypatch):
    """A driver records only its own runs: another driver's state written meanwhile survives, and the
    pack leaves the lock file out."""
    root = tmp_path / "repro"
    root.mkdir()
    reproduce.write_status(root, {"lra_s4_pathfinder": "stopped"})

    class Finished:  # a training that reached its max_steps at once
        def poll(self):
            return 0

    def launch(command, **kwargs):
        reproduce.write_status(root, {"lra_s4_pathfinder": "done"})  # the other driver, meanwhile
        return Finished()

    monkeypatch.setattr(reproduce.subprocess, "Popen", launch)
    lane = next(lane for lane in reproduce.LANES if lane.name == "lra_mamba_listops")
    reproduce.train_pieces([lane], root, minutes=1)
    assert reproduce.read_status(root) == {"lra_mamba_listops": "done", "lra_s4_pathfinder": "done"}
    reproduce.pack(root, tmp_path / "pack.tgz", max_checkpoint_mb=16)
    with tarfile.open(tmp_path / "pack.tgz") as archive:
        assert ".status.lock" not in archive.getnames()


def test_drivers_given_disjoint_runs_of_one_lane_record_only_their_own(tmp_path, monkeypatch):
    """--runs: a driver trains only the named runs of its lanes, in lane order, and leaves the status of
    the lane's other runs (another driver's) as that driver wrote it."""
    root = tmp_path / "repro"
    root.mkdir()
    sweep = next(lane for lane in reproduce.LANES if lane.name == "scaling_lr")
    mine, theirs = sweep.runs[-1].name, sweep.runs[-2].name
    reproduce.write_status(root, {theirs: "stopped"})
    started = []

    class Finished:
        def poll(self):
            return 0

    def launch(command, **kwargs):
        started.append(next(a for a in command if a.startswith("hydra.run.dir=")).rsplit("/", 1)[1])
        reproduce.write_status(root, {theirs: "done"})  # the other driver, meanwhile
        return Finished()

    monkeypatch.setattr(reproduce.subprocess, "Popen", launch)
    reproduce.train_pieces(reproduce.only_runs([sweep], {mine}), root, minutes=1)
    assert started == [mine]
    assert reproduce.read_status(root) == {mine: "done", theirs: "done"}
    assert [run.name for run in reproduce.only_runs([sweep], set())[0].runs] == [r.name for r in sweep.runs]
    with pytest.raises(SystemExit, match="none of the selected lanes"):
        reproduce.only_runs([sweep], {"scaling_mamba_l"})


def test_the_lr_sweep_runs_differ_from_their_base_run_only_in_the_peak_lr(tmp_path):
    runs = reproduce.all_runs()
    sweep = [name for name in runs if name.startswith("scaling_") and "_lr" in name]
    # sizes s and m, both families, and the runs beyond the sweep
    assert len(sweep) == 2 * 2 * len(reproduce.SCALING_LR_SWEEP) + len(reproduce.SCALING_LR_EXTRA)
    for name in sweep:
        base, lr = name.split("_lr")
        command = reproduce.train_command(runs[name], tmp_path)
        assert command[2:4] == [runs[base].overrides[0], f"optim.lr={lr}"], name


def test_the_mean_pooling_mamba_pathfinder_run_differs_from_its_base_run_only_in_the_pooling():
    from hydra import compose, initialize_config_dir

    from mamba_lm.trainer import config_dir
    from mamba_lm.trainer.config_store import register_configs

    runs = reproduce.all_runs()
    base, mean = runs["lra_mamba_pathfinder"].overrides, runs["lra_mamba_pathfinder_mean"].overrides
    assert mean == (*base, "model.pooling=mean")
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        poolings = [compose("train", overrides=list(o)).model.pooling for o in (base, mean)]
    assert poolings == ["last", "mean"]


def test_pack_stores_a_file_identical_to_one_already_packed_once(tmp_path):
    """Every scaling run keeps a copy of the one tokenizer: the pack holds its bytes once (a hard link for
    the other copies) and unpacks every copy whole; small or different files are stored as they are."""
    root = tmp_path / "repro"
    tokenizer = os.urandom(100_000)
    for name in ("scaling_mamba_s", "scaling_transformer_s"):
        make_run(root, name, checkpoint_bytes=3 * 2**20)
        (root / name / "tokenizer.json").write_bytes(tokenizer)
    (root / "scaling_transformer_s" / "metrics.jsonl").write_text('{"step": 20, "val_loss": 2.0}\n')
    reproduce.write_status(root, {"scaling_mamba_s": "done", "scaling_transformer_s": "done"})
    reproduce.pack(root, tmp_path / "repro.tgz", max_checkpoint_mb=1.0)
    with tarfile.open(tmp_path / "repro.tgz") as archive:
        members = {member.name: member for member in archive.getmembers()}
        archive.extractall(tmp_path / "unpacked", filter="data")
    assert members["scaling_mamba_s/tokenizer.json"].isfile()
    assert members["scaling_transformer_s/tokenizer.json"].islnk()
    assert members["scaling_transformer_s/tokenizer.json"].linkname == "scaling_mamba_s/tokenizer.json"
    assert all(
        members[f"{name}/metrics.jsonl"].isfile() for name in ("scaling_mamba_s", "scaling_transformer_s")
    )
    for name in ("scaling_mamba_s", "scaling_transformer_s"):
        assert (tmp_path / "unpacked" / name / "tokenizer.json").read_bytes() == tokenizer
    assert (tmp_path / "unpacked" / "scaling_transformer_s" / "metrics.jsonl").read_text().endswith("2.0}\n")
