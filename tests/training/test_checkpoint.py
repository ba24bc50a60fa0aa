"""Checkpoints: layout, atomic writes, pruning, damaged ones skipped, and load_model for evaluation."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_mamba, tiny_trainer
from safetensors import safe_open

from mamba_lm.trainer import (
    CheckpointError,
    TrainerConfig,
    best_checkpoint,
    find_latest_checkpoint,
    load_model,
    resolve_checkpoint,
    state_io,
)
from mamba_lm.trainer.checkpoint import list_checkpoints
from mamba_lm.trainer.loop import VALIDATION_METRICS


def _corrupt(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checkpoint_layout_and_model_round_trip(accelerator, tmp_path):
    model = tiny_mamba()
    summary = tiny_trainer(accelerator, tmp_path, model=model, keep_last=5).fit()
    folders = list_checkpoints(tmp_path)
    assert [f.name for f in folders] == ["step_00000006", "step_00000003"]
    assert summary.checkpoint == folders[0]
    names = {p.name for p in folders[0].iterdir()}
    assert names == {
        "model.safetensors",
        "optimizer.safetensors",
        "optimizer.json",
        "trainer_state.json",
        "run_config.json",
        "manifest.json",
    }
    assert all(name.endswith((".safetensors", ".json")) for name in names)  # nothing pickled
    with safe_open(str(folders[0] / "model.safetensors"), framework="pt") as f:
        keys, metadata = set(f.keys()), f.metadata()
    assert "backbone.embedding.weight" in keys and "lm_head.weight" not in keys  # tied: stored once
    assert json.loads(metadata["aliases"]) == {"lm_head.weight": "backbone.embedding.weight"}
    state = json.loads((folders[0] / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["world_size"] == 1 and state["ranks"][0]["data"] == {"position": 6}

    loaded, run_config = load_model(tmp_path)  # a run folder: its newest checkpoint
    assert run_config["model"]["arch"] == "mamba" and not loaded.training
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0)
    assert loaded.lm_head.weight is loaded.backbone.embedding.weight
    older, _ = load_model(folders[1])  # a checkpoint folder
    assert not torch.equal(older.backbone.embedding.weight, loaded.backbone.embedding.weight)


def test_keep_last_prunes_old_checkpoints_and_temporary_folders(accelerator, tmp_path):
    abandoned = [tmp_path / "checkpoints" / name for name in (".step_00000002.999-ab12.tmp", ".tmp-step_3-9")]
    for folder in abandoned:  # a killed write's temporary folder, now and as older versions named it
        folder.mkdir(parents=True)
    tiny_trainer(accelerator, tmp_path, save_every=1, keep_last=2).fit()
    assert [f.name for f in list_checkpoints(tmp_path)] == ["step_00000006", "step_00000005"]
    assert not any(folder.exists() for folder in abandoned)


def test_damaged_newest_checkpoint_is_skipped_with_a_warning(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, keep_last=5).fit()
    newest, older = list_checkpoints(tmp_path)
    _corrupt(newest / "model.safetensors")
    with pytest.warns(UserWarning, match="skipping damaged checkpoint .*step_00000006.*SHA-256"):
        assert find_latest_checkpoint(tmp_path) == older
    (older / "optimizer.json").unlink()
    with pytest.warns(UserWarning):
        assert find_latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="damaged"):
        resolve_checkpoint(newest)


def test_resume_auto_takes_the_newest_valid_checkpoint(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, keep_last=5).fit()
    newest = list_checkpoints(tmp_path)[0]
    (newest / "manifest.json").unlink()  # as if killed before the manifest was written
    with pytest.warns(UserWarning, match="no manifest.json"):
        summary = tiny_trainer(accelerator, tmp_path, max_steps=7, keep_last=5).fit()
    assert summary.step == 7
    state = json.loads((list_checkpoints(tmp_path)[0] / "trainer_state.json").read_text())
    assert state["ranks"][0]["data"] == {"position": 7}  # continued from step 3, not from scratch


def test_fresh_run_refuses_a_folder_with_checkpoints(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, max_steps=3).fit()
    with pytest.raises(FileExistsError, match="resume=auto"):
        tiny_trainer(accelerator, tmp_path, resume=None).fit()


def test_interrupted_write_leaves_no_checkpoint(accelerator, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("mamba_lm.trainer.checkpoint.write_manifest", fail)
    with pytest.raises(OSError, match="disk full"):
        tiny_trainer(accelerator, tmp_path).fit()
    assert list_checkpoints(tmp_path) == []
    assert list((tmp_path / "checkpoints").iterdir()) == []


def test_load_model_errors_name_the_cause(accelerator, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no valid checkpoint"):
        load_model(tmp_path / "empty_run")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError, match="neither a run folder"):
        load_model(tmp_path / "plain")

    run = tmp_path / "run"
    tiny_trainer(accelerator, run, max_steps=3).fit()
    checkpoint = list_checkpoints(run)[0]
    config = json.loads((checkpoint / "run_config.json").read_text())
    config["model"]["d_model"] = 32  # weights of a 16-wide model under a 32-wide config
    (checkpoint / "run_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="damaged"):
        load_model(checkpoint)  # the manifest notices the edit
    state_io.write_manifest(checkpoint, 3)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(checkpoint)
    config["model"] = {"arch": "transformer", "d_model": 16, "n_layer": 2, "n_head": 2, "vocab_size": 32}
    (checkpoint / "run_config.json").write_text(json.dumps(config))
    state_io.write_manifest(checkpoint, 3)
    with pytest.raises(CheckpointError, match="arch='transformer'"):
        load_model(checkpoint)


def test_optimizer_state_round_trip_through_safetensors_and_json():
    model = tiny_mamba()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randint(0, 32, (2, 8))).logits.sum().backward()
    optimizer.step()
    tensors, meta = state_io.flatten_optimizer_state(optimizer.state_dict())
    rebuilt = state_io.unflatten_optimizer_state(tensors, json.loads(json.dumps(meta)))
    original = optimizer.state_dict()
    assert rebuilt["param_groups"][0]["betas"] == original["param_groups"][0]["betas"]
    for param, entries in original["state"].items():
        for key, value in entries.items():
            torch.testing.assert_close(rebuilt["state"][str(param)][key], value, rtol=0, atol=0)


def test_junk_step_folders_neither_count_toward_keep_last_nor_get_deleted(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, max_steps=3, save_every=1, keep_last=2).fit()
    junk = [tmp_path / "checkpoints" / f"step_{step:08d}" for step in (100, 200)]
    junk[0].mkdir()  # an empty folder
    junk[1].mkdir()  # a user's notes, numbered above every checkpoint
    (junk[1] / "notes.txt").write_text("mine")
    with pytest.warns(UserWarning, match="does not count toward keep_last"):
        tiny_trainer(accelerator, tmp_path, max_steps=6, save_every=1, keep_last=2).fit()
    names = [f.name for f in list_checkpoints(tmp_path)]
    assert names == ["step_00000200", "step_00000100", "step_00000006", "step_00000005"]
    assert (junk[1] / "notes.txt").read_text() == "mine"
    with pytest.warns(UserWarning, match="skipping damaged checkpoint .*step_00000200"):
        assert find_latest_checkpoint(tmp_path).name == "step_00000006"


def _rewrite_manifest_files(checkpoint, keep):
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["files"] = {name: entry for name, entry in manifest["files"].items() if keep(name)}
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_listing_no_files_or_no_weights_is_invalid(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, keep_last=5).fit()
    newest, older = list_checkpoints(tmp_path)
    _rewrite_manifest_files(newest, keep=lambda name: False)
    with pytest.warns(UserWarning, match="step_00000006: manifest.json lists no files"):
        assert find_latest_checkpoint(tmp_path) == older
    with pytest.raises(CheckpointError, match="lists no files"):
        resolve_checkpoint(newest)

    _rewrite_manifest_files(older, keep=lambda name: name != "model.safetensors")
    (older / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="does not list model.safetensors"):
        load_model(older)
    with pytest.warns(UserWarning):
        assert find_latest_checkpoint(tmp_path) is None


def test_resume_auto_refuses_when_every_checkpoint_is_damaged_and_changes_nothing(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, keep_last=5).fit()
    newest, older = list_checkpoints(tmp_path)
    _corrupt(newest / "model.safetensors")
    (older / "manifest.json").unlink()

    def snapshot():  # every file but the lock, which each start rewrites with its pid
        files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name != "run.lock")
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in files}

    before = snapshot()
    pattern = r"no valid checkpoint .*step_00000006: .*SHA-256.*step_00000003: no manifest.json.*run.dir"
    with pytest.raises(CheckpointError, match=pattern):
        tiny_trainer(accelerator, tmp_path, max_steps=9, keep_last=5).fit()
    assert snapshot() == before  # metrics.jsonl and both checkpoints as they were


def _scripted_validation(monkeypatch, metric: str, values: list[float]) -> None:
    """Each validation of the trainer returns the next of ``values`` as ``metric`` (the tiny LM's validation
    then reports that metric, val_accuracy included)."""
    remaining = iter(values)
    monkeypatch.setattr("mamba_lm.trainer.loop.evaluate", lambda *args, **kwargs: {metric: next(remaining)})
    monkeypatch.setitem(VALIDATION_METRICS, "lm", (metric,))


@pytest.mark.parametrize(
    ("metric", "values"),
    [
        ("val_loss", [5.0, 4.0, 3.0, 3.5, 3.2, 3.0, 3.1, 3.3]),  # a tie at step 6 keeps step 3
        ("val_accuracy", [0.1, 0.2, 0.5, 0.4, float("nan"), 0.5, 0.45, 0.3]),  # NaN is never the best
    ],
)
def test_keep_best_keeps_the_best_validations_checkpoint_beside_the_newest(
    accelerator, tmp_path, monkeypatch, metric, values
):
    """Each improving validation is saved at once (no periodic saves here); pruning keeps it and the newest;
    a resumed run remembers the best from the checkpoint's trainer state."""
    _scripted_validation(monkeypatch, metric, values)
    options = dict(eval_every=1, save_every=0, keep_last=1, keep_best=metric)
    tiny_trainer(accelerator, tmp_path, max_steps=5, **options).fit()
    assert [f.name for f in list_checkpoints(tmp_path)] == ["step_00000005", "step_00000003"]
    tiny_trainer(accelerator, tmp_path, max_steps=8, **options).fit()  # resumes at 5: validations 6-8
    assert [f.name for f in list_checkpoints(tmp_path)] == ["step_00000008", "step_00000003"]
    assert best_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_00000003"
    state = json.loads((tmp_path / "checkpoints" / "step_00000008" / "trainer_state.json").read_text())
    assert state["best_step"] == 3 and state["best_value"] == values[2] and state["best_metric"] == metric


def test_a_run_resumed_following_another_metric_starts_its_best_afresh(accelerator, tmp_path, monkeypatch):
    """Step 3's val_ppl of 9.0 would not beat step 1's val_loss of 1.0; as another metric it is the best."""
    _scripted_validation(monkeypatch, "val_loss", [1.0, 2.0])
    options = dict(eval_every=1, save_every=0, keep_last=1)
    tiny_trainer(accelerator, tmp_path, max_steps=2, keep_best="val_loss", **options).fit()
    assert best_checkpoint(tmp_path).name == "step_00000001"
    _scripted_validation(monkeypatch, "val_ppl", [9.0, 8.5])
    tiny_trainer(accelerator, tmp_path, max_steps=4, keep_best="val_ppl", **options).fit()
    assert best_checkpoint(tmp_path).name == "step_00000004"
    assert [f.name for f in list_checkpoints(tmp_path)] == ["step_00000004"]


def test_without_keep_best_no_checkpoint_is_the_best(accelerator, tmp_path, monkeypatch):
    _scripted_validation(monkeypatch, "val_loss", [3.0, 2.0, 1.0])
    tiny_trainer(accelerator, tmp_path, max_steps=3, eval_every=1, save_every=0, keep_last=1).fit()
    assert [f.name for f in list_checkpoints(tmp_path)] == ["step_00000003"]
    assert best_checkpoint(tmp_path) is None


def test_keep_best_names_the_metrics_it_can_follow():
    with pytest.raises(ValueError, match="trainer.keep_best.*val_accuracy, val_loss, val_ppl"):
        TrainerConfig(keep_best="accuracy")


def test_keep_best_must_name_a_metric_the_tasks_validation_reports(accelerator, tmp_path):
    with pytest.raises(ValueError, match="keep_best=val_accuracy is not reported by a lm run's validation"):
        tiny_trainer(accelerator, tmp_path, keep_best="val_accuracy").prepare()
    assert not (tmp_path / "checkpoints").exists()  # refused before anything was written
