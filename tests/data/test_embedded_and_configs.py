"""The embedded default corpus and the shipped data configs."""

from __future__ import annotations

import json
from pathlib import Path

import mamba_lm.data.lm.prepare as prepare
import pytest
from mamba_lm.data import build_datamodule, parse_data_config
from mamba_lm.data.lm.embedded import stdlib_dir, stdlib_modules
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"
REQUIRED = [
    "embedded", "hf", "local_files", "pile", "openwebtext", "selective_copying", "induction_heads",
    "lra_listops", "lra_text", "lra_retrieval", "lra_image", "lra_pathfinder", "lra_pathx",
    "lra_listops_quick", "lra_pathfinder_quick",
]  # fmt: skip


def test_every_shipped_data_config_parses():
    names = sorted(path.stem for path in CONFIGS.glob("*.yaml"))
    assert set(REQUIRED) <= set(names)
    for name in names:
        config = parse_data_config(OmegaConf.load(CONFIGS / f"{name}.yaml"))
        assert config.seqlen >= 0 and hasattr(config, "cache_dir"), name
    assert parse_data_config(OmegaConf.load(CONFIGS / "embedded.yaml")).dataset.source == "embedded"
    assert parse_data_config(OmegaConf.load(CONFIGS / "pile.yaml")).dataset.streaming


def test_embedded_corpus_builds_offline_from_the_standard_library(tmp_path, monkeypatch):
    config = OmegaConf.to_container(OmegaConf.load(CONFIGS / "embedded.yaml"))
    config["cache_dir"] = str(tmp_path)
    config["dataset"]["max_bytes"] = 1_500_000  # a slice keeps the test quick; the default reads everything
    config["tokenizer"]["vocab_size"] = 1024
    config["validation"]["fraction"] = 0.1
    module = build_datamodule(config, seed=0)
    assert module.vocab_size == 1024 and module.eos_token_id == 0 and module.pad_token_id == 1
    described = module.describe()
    assert described["train_tokens"] > 200_000 and described["val_tokens"] > 0 and described["val_blocks"] > 0
    corpus = next((tmp_path / "embedded").glob("stdlib-*.jsonl"))
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    modules = {str(path.relative_to(stdlib_dir())) for path in stdlib_modules()}
    assert len(records) > 500 and all(record["path"] in modules for record in records)
    assert not any(
        "site-packages" in record["path"] or "/test/" in f"/{record['path']}" for record in records
    )
    from tokenizers import Tokenizer

    text = Tokenizer.from_file(module.tokenizer_file).decode(
        next(module.train_loader(4))["input_ids"][0].tolist()
    )
    assert any(keyword in text for keyword in ("def ", "import ", "return", "self", '"""'))
    calls = []
    monkeypatch.setattr(prepare, "build_corpus", lambda *a: calls.append(a))
    assert build_datamodule(config, seed=1).folder == module.folder and calls == []  # cached


@pytest.mark.parametrize("name", ["selective_copying", "induction_heads", "lra_listops_quick"])
def test_quick_configs_build(tmp_path, name):
    config = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"))
    config["cache_dir"] = str(tmp_path)
    module = build_datamodule(config, seed=0)
    batch = next(module.train_loader(2))
    assert batch["input_ids"].shape[0] == 2 and batch["labels"].dtype.is_signed


def test_build_command(tmp_path, capsys):
    from mamba_lm.data.__main__ import main

    assert (
        main(["build", "lra_listops_quick", f"cache_dir={tmp_path}", "num_train=50", "data.num_val=20"]) == 0
    )
    described = json.loads(capsys.readouterr().out)
    assert described["train_examples"] == 50 and described["val_examples"] == 20
    assert main(["prepare"]) == 2
    with pytest.raises(SystemExit, match="no data config 'nope'"):
        main(["build", "nope"])
