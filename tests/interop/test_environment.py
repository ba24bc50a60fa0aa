"""Environment variables a user sets are honoured: HF_DATASETS_CACHE / HF_HOME (where datasets caches),
WANDB_* (wandb's settings where the config leaves them null), and every logged record becomes one plain
``step=N train/loss=... eval/loss=...`` line through ``logging``, progress bar or not."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import tiny_trainer
from mamba_lm.data.cache import hf_datasets_cache
from mamba_lm.data.lm.config import TextDatasetConfig
from mamba_lm.data.lm.sources import load_documents

from mamba_lm.trainer.config import LoggerConfig, WandbMode
from mamba_lm.trainer.metrics import metrics_line, wandb_init_settings


def test_hf_cache_variables_decide_where_datasets_caches(tmp_path, monkeypatch):
    for name in ("HF_DATASETS_CACHE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert hf_datasets_cache(tmp_path / "root") == str(tmp_path / "root" / "hf")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    assert hf_datasets_cache(tmp_path / "root") is None

    hf_cache = tmp_path / "hf_datasets_cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(hf_cache))
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", hf_cache)  # datasets read it at import
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"text": "one document"}\n{"text": "another"}\n')
    config = TextDatasetConfig(source="files", files=[str(corpus)])
    rows = load_documents(config, "train", tmp_path / "root")
    assert rows["text"] == ["one document", "another"]
    assert any(hf_cache.iterdir()) and not (tmp_path / "root" / "hf").exists()


def test_wandb_settings_defer_to_the_environment(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_NAME", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    defaults = wandb_init_settings(LoggerConfig(), tmp_path / "run_7")
    assert defaults == {
        "project": "mamba-lm",
        "entity": None,
        "name": "run_7",
        "tags": [],
        "mode": "offline",
        "dir": str(tmp_path / "run_7"),
    }
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_ENTITY", "team")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    from_env = wandb_init_settings(LoggerConfig(), tmp_path / "run_7")
    assert (from_env["mode"], from_env["project"], from_env["entity"]) == ("disabled", "from-env", "team")
    assert from_env["dir"] == str(tmp_path / "wandb_dir")
    explicit = wandb_init_settings(LoggerConfig(mode=WandbMode.online, project="mine"), tmp_path)
    assert (explicit["mode"], explicit["project"]) == ("online", "mine")  # the config wins when set


def test_metric_lines_are_logged_without_a_progress_bar(accelerator, tmp_path, caplog):
    assert metrics_line({"step": 3, "loss": 2.5, "lr": 1e-3, "val_loss": 2.25, "val_ppl": 9.5}) == (
        "step=3 train/loss=2.5 train/lr=0.001 eval/loss=2.25 eval/ppl=9.5"
    )
    with caplog.at_level(logging.INFO, logger="mamba_lm.trainer.metrics"):
        tiny_trainer(accelerator, tmp_path, max_steps=4, log_every=2, eval_every=4, progress_bar=False).fit()
    lines = [r.getMessage() for r in caplog.records if r.name == "mamba_lm.trainer.metrics"]
    assert [line.split()[0] for line in lines] == ["step=2", "step=4"]
    assert all("train/loss=" in line for line in lines)
    assert "eval/loss=" in lines[-1] and "eval/loss=" not in lines[0]
    first_record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert float(lines[0].split("train/loss=")[1].split()[0]) == pytest.approx(first_record["loss"], rel=1e-5)
