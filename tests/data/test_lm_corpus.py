"""Language-model corpora: sources agree, shards are reused or rebuilt, blocks and batches are right."""

from __future__ import annotations

import json
from pathlib import Path

import mamba_lm.data.lm.prepare as prepare
import numpy as np
import pytest
from conftest import lm_config, make_documents, write_jsonl
from mamba_lm.data import build_datamodule
from mamba_lm.data.lm.shards import load_manifest, token_dtype


def shard_bytes(module) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(module.folder.glob("*.bin"))}


def test_hf_dataset_on_disk_and_local_files_give_identical_shards(tmp_path, documents, jsonl_corpus):
    import datasets

    datasets.Dataset.from_dict({"text": documents, "id": list(range(len(documents)))}).save_to_disk(
        tmp_path / "ds"
    )
    text_folder = tmp_path / "texts"
    text_folder.mkdir()
    for index, text in enumerate(documents):
        (text_folder / f"doc_{index:04d}.txt").write_text(text)
    sources = {
        "disk": {"source": "disk", "path": str(tmp_path / "ds")},
        "jsonl": {"source": "files", "files": [str(jsonl_corpus)]},
        "txt": {"source": "files", "files": [str(text_folder / "*.txt")]},
    }
    modules = {
        name: build_datamodule(lm_config(tmp_path / name, dataset), seed=0)
        for name, dataset in sources.items()
    }
    hashes = {name: module.manifest["content_hash"] for name, module in modules.items()}
    assert len(set(hashes.values())) == 1, hashes
    assert shard_bytes(modules["disk"]) == shard_bytes(modules["jsonl"]) == shard_bytes(modules["txt"])
    tokenizers = {name: Path(module.tokenizer_file).read_text() for name, module in modules.items()}
    assert len(set(tokenizers.values())) == 1
    manifest = modules["jsonl"].manifest
    assert manifest["splits"]["train"]["documents"] + manifest["splits"]["val"]["documents"] == len(documents)
    assert manifest["dtype"] == "uint16" and manifest["tokenizer"]["vocab_size"] == 300


def test_stream_is_documents_joined_with_eos(tmp_path, documents, jsonl_corpus):
    module = build_datamodule(lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}), seed=0)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(module.tokenizer_file)
    train_texts = [t for t in documents if not prepare.is_held_out(t, 0.2)]
    expected = []
    for text in train_texts:
        expected += tokenizer.encode(text, add_special_tokens=False).ids + [module.eos_token_id]
    stream = np.concatenate(
        [np.fromfile(p, dtype=np.uint16) for p in sorted(module.folder.glob("train-*.bin"))]
    )
    assert stream.tolist() == expected
    assert len(list(module.folder.glob("train-*.bin"))) > 1  # shard_tokens=1000 cut it into several shards
    assert tokenizer.decode(expected[: expected.index(module.eos_token_id)]) == train_texts[0]


def test_second_run_reuses_shards_and_a_changed_config_rebuilds(tmp_path, jsonl_corpus, monkeypatch):
    config = lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]})
    first = build_datamodule(config, seed=0)
    calls = []
    original = prepare.build_corpus
    monkeypatch.setattr(prepare, "build_corpus", lambda *a: calls.append(1) or original(*a))
    again = build_datamodule({**config, "seqlen": 32}, seed=1)  # seqlen and seed do not touch the shards
    assert calls == [] and again.folder == first.folder
    changed = build_datamodule(lm_config(tmp_path, config["dataset"], tokenizer={"vocab_size": 320}), seed=0)
    assert calls == [1] and changed.folder != first.folder and changed.vocab_size == 320
    write_jsonl(jsonl_corpus, make_documents(60, seed=5))  # new content under the same name
    build_datamodule(config, seed=0)
    assert calls == [1, 1]


def test_blocks_labels_and_document_index(tmp_path, jsonl_corpus):
    config = lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}, packing=True)
    module = build_datamodule(config, seed=0)
    stream = np.concatenate(
        [np.fromfile(p, dtype=np.uint16) for p in sorted(module.folder.glob("train-*.bin"))]
    )
    assert module.train_blocks.num_blocks == (len(stream) - 1) // 16
    batch = next(module.train_loader(4))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["seq_idx"].shape == (4, 16)
    assert str(batch["input_ids"].dtype) == "torch.int64" and str(batch["seq_idx"].dtype) == "torch.int32"
    assert (batch["input_ids"][:, 1:] == batch["labels"][:, :-1]).all()
    for row in range(4):  # each row is a window of the stream
        ids = batch["input_ids"][row].numpy()
        start = next(s for s in range(0, len(stream) - 16, 16) if np.array_equal(stream[s : s + 16], ids))
        assert stream[start + 16] == batch["labels"][row, -1]
        seq_idx = batch["seq_idx"][row].numpy()
        assert seq_idx[0] == 0 and np.all(np.diff(seq_idx) >= 0)
        after_eos = np.flatnonzero(ids[:-1] == module.eos_token_id) + 1
        assert np.all(np.diff(seq_idx)[after_eos - 1] == 1) and seq_idx[-1] == len(after_eos)


def test_loader_resume_reproduces_batches_across_epochs(tmp_path, jsonl_corpus):
    module = build_datamodule(lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}), seed=3)
    steps_per_epoch = module.train_blocks.num_blocks // 8
    total = 2 * steps_per_epoch + 3
    straight = [next(loader)["input_ids"] for loader in [module.train_loader(8)] for _ in range(total)]
    first = module.train_loader(8)
    head = [next(first)["input_ids"] for _ in range(steps_per_epoch + 2)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed = build_datamodule(lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}), seed=3)
    loader = resumed.train_loader(8)
    loader.load_state_dict(state)
    tail = [next(loader)["input_ids"] for _ in range(total - len(head))]
    assert all((a == b).all() for a, b in zip(head + tail, straight))
    assert state["epoch"] == 1
    other_seed = next(
        build_datamodule(
            lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}), 4
        ).train_loader(8)
    )
    assert not (other_seed["input_ids"] == straight[0]).all()


def test_ranks_read_disjoint_blocks(tmp_path, jsonl_corpus):
    config = lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]})
    loaders = [build_datamodule(config, seed=0, rank=r, world_size=2).train_loader(4) for r in range(2)]
    for _ in range(5):
        rows = [{tuple(row.tolist()) for row in next(loader)["input_ids"]} for loader in loaders]
        assert not rows[0] & rows[1]
    assert loaders[0].state_dict() == loaders[1].state_dict()


def test_validation_is_fresh_deterministic_and_held_out(tmp_path, jsonl_corpus):
    module = build_datamodule(lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}), seed=0)
    first = [b["input_ids"] for b in module.val_loader(3)]
    second = [b["input_ids"] for b in module.val_loader(3)]
    assert len(first) == 3 and sum(len(b) for b in first) == 8  # max_blocks=8
    assert all((a == b).all() for a, b in zip(first, second))
    train = {tuple(r.tolist()) for _ in range(1) for r in next(module.train_loader(64))["input_ids"]}
    assert not train & {tuple(r.tolist()) for b in first for r in b}


def test_named_validation_split_and_tokenizer_file(tmp_path, documents):
    import datasets

    dataset = datasets.DatasetDict(
        train=datasets.Dataset.from_dict({"body": documents[:100]}),
        validation=datasets.Dataset.from_dict({"body": documents[100:]}),
    )
    dataset.save_to_disk(tmp_path / "dd")
    first = build_datamodule(
        lm_config(
            tmp_path,
            {"source": "disk", "path": str(tmp_path / "dd"), "text_column": "body"},
            validation={"split": "validation"},
        ),
        seed=0,
    )
    assert first.manifest["splits"]["val"]["documents"] == 20
    second = build_datamodule(
        lm_config(
            tmp_path / "b",
            {"source": "disk", "path": str(tmp_path / "dd"), "text_column": "body"},
            tokenizer={"source": first.tokenizer_file},
            validation={"split": "validation"},
        ),
        seed=0,
    )
    assert second.manifest["content_hash"] == first.manifest["content_hash"]
    assert second.manifest["tokenizer"]["source"] == first.tokenizer_file


def test_large_vocabularies_use_uint32(tmp_path, jsonl_corpus, documents):
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w.strip(".:") for text in documents for w in text.split()})
    vocab = {"<|endoftext|>": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    vocab.update({f"filler{i}": i for i in range(len(vocab), 70_000)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "big.json"))
    assert token_dtype(65_536) == np.uint16 and token_dtype(65_537) == np.uint32
    config = lm_config(
        tmp_path,
        {"source": "files", "files": [str(jsonl_corpus)]},
        tokenizer={"source": str(tmp_path / "big.json"), "pad_token": None},
    )
    module = build_datamodule(config, seed=0)
    assert (
        module.manifest["dtype"] == "uint32" and module.vocab_size == 70_000 and module.pad_token_id is None
    )
    batch = next(module.train_loader(2))
    assert int(batch["input_ids"].max()) < 70_000
    assert load_manifest(module.folder, "full")["content_hash"] == module.manifest["content_hash"]


def test_unreachable_hub_tokenizer_falls_back_or_fails(tmp_path, jsonl_corpus, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    dataset = {"source": "files", "files": [str(jsonl_corpus)]}
    module = build_datamodule(
        lm_config(tmp_path, dataset, tokenizer={"source": "EleutherAI/gpt-neox-20b"}), seed=0
    )
    assert module.manifest["tokenizer"]["source"] == "trained" and module.vocab_size == 300
    strict = lm_config(
        tmp_path / "strict", dataset, tokenizer={"source": "EleutherAI/gpt-neox-20b", "fallback": "error"}
    )
    with pytest.raises(RuntimeError, match="cannot fetch tokenizer 'EleutherAI/gpt-neox-20b'"):
        build_datamodule(strict, seed=0)
