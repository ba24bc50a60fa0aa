"""Bad input fails early with an error that names the cause; interrupted builds never load as valid."""

from __future__ import annotations

import random

import mamba_lm.data.lm.prepare as prepare
import numpy as np
import pytest
from conftest import lm_config, write_jsonl
from mamba_lm.data import build_datamodule, check_vocab_fits, parse_data_config
from mamba_lm.data.lm.shards import ShardError, ShardWriter, load_manifest
from mamba_lm.data.lm.sources import find_unreadable_file


def files(path) -> dict:
    return {"source": "files", "files": [str(path)]}


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['seqlem'\]"):
        parse_data_config({"kind": "lm", "seqlem": 128})
    with pytest.raises(ValueError, match=r"data.dataset: unknown key\(s\) \['paht'\]"):
        parse_data_config({"kind": "lm", "dataset": {"source": "hub", "paht": "x"}})
    with pytest.raises(TypeError, match="data.seqlen must be int"):
        parse_data_config({"kind": "lm", "seqlen": "long"})
    with pytest.raises(ValueError, match="data.kind must be one of"):
        parse_data_config({"kind": "lm_corpus"})
    with pytest.raises(ValueError, match="data.dataset.path is required"):
        parse_data_config({"kind": "lm", "dataset": {"source": "hub"}})
    with pytest.raises(ValueError, match="data.source must be one of"):
        parse_data_config({"kind": "lra_retrieval", "source": "generate"})


def test_dictconfig_is_accepted():
    from omegaconf import OmegaConf

    node = OmegaConf.create(
        {"train_length": 128, "data": {"kind": "induction_heads", "seqlen": "${train_length}"}}
    )
    config = parse_data_config(node.data)
    assert config.seqlen == 128 and config.eval_seqlens[-1] == 2**20


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file found for .*missing.jsonl"):
        build_datamodule(lm_config(tmp_path, files(tmp_path / "missing.jsonl")), seed=0)
    with pytest.raises(FileNotFoundError, match="no dataset folder at"):
        build_datamodule(lm_config(tmp_path, {"source": "disk", "path": str(tmp_path / "nope")}), seed=0)


def test_empty_dataset(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="is empty: every file has 0 bytes"):
        build_datamodule(lm_config(tmp_path, files(tmp_path / "empty.jsonl")), seed=0)
    write_jsonl(tmp_path / "blank.jsonl", ["", "", ""])
    with pytest.raises(ValueError, match="no non-empty documents in column 'text'"):
        build_datamodule(lm_config(tmp_path, files(tmp_path / "blank.jsonl")), seed=0)


@pytest.mark.parametrize("streaming", [False, True])
def test_binary_or_non_utf8_corpus_file_is_named(tmp_path, documents, streaming):
    write_jsonl(tmp_path / "a.jsonl", documents)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(random.Random(0).randbytes(4096))  # a generated binary file
    for pattern in ("*.jsonl", "b.jsonl"):  # after a good file, and alone (read first when streaming)
        dataset = {"source": "files", "files": [str(tmp_path / pattern)], "streaming": streaming}
        with pytest.raises(
            ValueError, match=r"^corpus file .*/b.jsonl is binary, not text: a NUL byte at offset"
        ):
            module = build_datamodule(lm_config(tmp_path, dataset), seed=0)
            next(module.train_loader(2))
    binary.unlink()
    (tmp_path / "c.jsonl").write_bytes(b'{"text": "caf\xe9 au lait"}\n' * 50)  # Latin-1, valid JSON
    with pytest.raises(
        ValueError, match=r"^corpus file .*/c.jsonl is not UTF-8 text: byte 0xe9 at offset 13$"
    ):
        dataset = {"source": "files", "files": [str(tmp_path / "*.jsonl")], "streaming": streaming}
        module = build_datamodule(lm_config(tmp_path, dataset), seed=0)
        next(module.train_loader(2))


def test_find_unreadable_file(tmp_path):
    text = tmp_path / "ok.txt"
    text.write_text("naïve – ünïcode € 𝔘\n" * 3)
    assert find_unreadable_file([text], chunk_bytes=1) is None  # characters split across reads
    cut = tmp_path / "cut.txt"
    cut.write_bytes("ab€".encode()[:-1])
    assert (
        find_unreadable_file([text, cut], chunk_bytes=2)
        == f"corpus file {cut} is not UTF-8 text: byte 0xe2 at offset 2"
    )
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("plain words", encoding="utf-16-le")
    assert find_unreadable_file([utf16]) == f"corpus file {utf16} is binary, not text: a NUL byte at offset 1"


def test_text_column_that_does_not_exist(tmp_path, documents):
    write_jsonl(tmp_path / "c.jsonl", documents, column="content")
    with pytest.raises(ValueError, match=r"text column 'text' does not exist .* columns are \['content'\]"):
        build_datamodule(lm_config(tmp_path, files(tmp_path / "c.jsonl")), seed=0)


def test_tokenizer_larger_than_the_model(tmp_path, jsonl_corpus):
    with pytest.raises(ValueError, match="has 300 tokens, more than the model's vocabulary of 256"):
        build_datamodule(lm_config(tmp_path, files(jsonl_corpus), max_vocab_size=256), seed=0)
    module = build_datamodule(lm_config(tmp_path, files(jsonl_corpus)), seed=0)  # the same shards, no limit
    with pytest.raises(ValueError, match="more than the model's vocabulary"):
        check_vocab_fits(module.vocab_size, 299)
    check_vocab_fits(module.vocab_size, 300)


def test_tokenizer_problems(tmp_path, jsonl_corpus):
    with pytest.raises(FileNotFoundError, match="tokenizer file .*nope.json does not exist"):
        build_datamodule(
            lm_config(tmp_path, files(jsonl_corpus), tokenizer={"source": str(tmp_path / "nope.json")}), 0
        )
    trained = build_datamodule(lm_config(tmp_path, files(jsonl_corpus)), 0).tokenizer_file
    other_eos = {"source": trained, "eos_token": "</s>"}
    with pytest.raises(ValueError, match="eos token '</s>' is not in the vocabulary of tokenizer"):
        build_datamodule(lm_config(tmp_path, files(jsonl_corpus), tokenizer=other_eos), 0)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not a valid tokenizer.json"):
        build_datamodule(
            lm_config(tmp_path, files(jsonl_corpus), tokenizer={"source": str(tmp_path / "broken.json")}), 0
        )


def test_interrupted_build_leaves_nothing_that_loads(tmp_path, jsonl_corpus, monkeypatch):
    config = lm_config(tmp_path, files(jsonl_corpus))
    original = ShardWriter.add_document
    written = []

    def crash_midway(self, tokens):
        written.append(1)
        if len(written) == 50:
            raise KeyboardInterrupt("simulated kill during the shard write")
        original(self, tokens)

    monkeypatch.setattr(ShardWriter, "add_document", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        build_datamodule(config, seed=0)
    assert not [p for p in (tmp_path / "lm").iterdir() if not p.name.startswith(".") or p.suffix != ".lock"]
    monkeypatch.setattr(ShardWriter, "add_document", original)
    module = build_datamodule(config, seed=0)
    assert load_manifest(module.folder, "full")["splits"]["train"]["tokens"] > 0


def test_damaged_shards_are_detected_and_rebuilt(tmp_path, jsonl_corpus, caplog):
    config = lm_config(tmp_path, files(jsonl_corpus))
    module = build_datamodule(config, seed=0)
    shard = sorted(module.folder.glob("train-*.bin"))[1]
    good = shard.read_bytes()
    shard.write_bytes(good[:-6])  # a truncated write
    with pytest.raises(ShardError, match="truncated"):
        load_manifest(module.folder)
    shard.write_bytes(bytes(len(good)))  # right size, wrong content
    with pytest.raises(ShardError, match="damaged"):
        load_manifest(module.folder, "full")
    shard.write_bytes(good[:-2])
    rebuilt = build_datamodule(config, seed=0)
    assert "rebuilding" in caplog.text
    assert np.array_equal(np.fromfile(shard, dtype=np.uint16), np.frombuffer(good, dtype=np.uint16))
    assert rebuilt.manifest["content_hash"] == module.manifest["content_hash"]
    (module.folder / "manifest.json").unlink()
    with pytest.raises(ShardError, match="has no manifest.json"):
        load_manifest(module.folder)


def test_validation_that_selects_nothing_is_explained(tmp_path, jsonl_corpus):
    with pytest.raises(ValueError, match="validation split .* is empty"):
        build_datamodule(lm_config(tmp_path, files(jsonl_corpus), validation={"fraction": 0.0}), seed=0)
    with pytest.raises(ValueError, match="has one split .*data.validation.fraction"):
        build_datamodule(lm_config(tmp_path, files(jsonl_corpus), validation={"split": "validation"}), seed=0)


def test_held_out_choice_depends_on_text_only():
    texts = [f"document number {i}" for i in range(2000)]
    chosen = [prepare.is_held_out(t, 0.1) for t in texts]
    assert 150 < sum(chosen) < 250
    assert chosen == [prepare.is_held_out(t, 0.1) for t in texts]
    assert not any(prepare.is_held_out(t, 0.0) for t in texts)
