"""Token shards are checked against their manifest at open (issue 13, fault 6): size and sampled blocks
by default, every byte on demand; old manifests without sampled digests are checked in full once."""

from __future__ import annotations

import io
import json
import logging

import mamba_lm.data.lm.shards as shards
import numpy as np
import pytest
from conftest import lm_config
from mamba_lm.data import build_datamodule
from mamba_lm.data.__main__ import main
from mamba_lm.data.lm.shards import (
    MANIFEST,
    SAMPLE_BLOCK_BYTES,
    SAMPLE_BLOCKS,
    ShardError,
    load_manifest,
    sampled_digest,
)


def corpus(tmp_path, jsonl_corpus, **overrides) -> dict:
    return lm_config(tmp_path, {"source": "files", "files": [str(jsonl_corpus)]}, **overrides)


def test_sampled_digest_reads_blocks_and_size():
    data = bytes(range(256)) * 4096  # 1 MiB
    whole = sampled_digest(io.BytesIO(data), len(data), 4, len(data))
    sampled = sampled_digest(io.BytesIO(data), len(data), 4, 1024)
    assert whole != sampled
    between = bytearray(data)
    between[len(data) // 6] ^= 0xFF  # not in any of the 4 sampled blocks of 1 KiB
    assert sampled_digest(io.BytesIO(bytes(between)), len(data), 4, 1024) == sampled
    last = bytearray(data)
    last[-1] ^= 0xFF  # the last block is always sampled
    assert sampled_digest(io.BytesIO(bytes(last)), len(data), 4, 1024) != sampled


def test_zeroed_shard_is_caught_at_open_and_rebuilt(tmp_path, jsonl_corpus, caplog):
    module = build_datamodule(corpus(tmp_path, jsonl_corpus), seed=0)
    shard = sorted(module.folder.glob("train-*.bin"))[2]
    good = shard.read_bytes()
    assert "sampled_blake2b" in module.manifest["splits"]["train"]["shards"][2]
    shard.write_bytes(bytes(len(good)))  # right size, zeros: trained silently before
    with pytest.raises(ShardError, match=rf"shard .*{shard.name} of split 'train' differs .* sampled blocks"):
        load_manifest(module.folder)
    assert load_manifest(module.folder, "off")  # the size check alone passes
    with caplog.at_level(logging.WARNING):
        rebuilt = build_datamodule(corpus(tmp_path, jsonl_corpus), seed=0)
    assert f"{shard.name} of split 'train' differs" in caplog.text and "rebuilding" in caplog.text
    assert shard.read_bytes() == good and rebuilt.manifest["content_hash"] == module.manifest["content_hash"]


def test_verify_off_keeps_a_damaged_cache(tmp_path, jsonl_corpus):
    module = build_datamodule(corpus(tmp_path, jsonl_corpus), seed=0)
    shard = module.folder / "train-00000.bin"
    shard.write_bytes(bytes(shard.stat().st_size))
    reused = build_datamodule(corpus(tmp_path, jsonl_corpus, verify="off"), seed=0)
    assert reused.folder == module.folder and not any(shard.read_bytes())
    with pytest.raises(ValueError, match="data.verify must be one of"):
        build_datamodule(corpus(tmp_path, jsonl_corpus, verify="quick"), seed=0)


def test_full_check_catches_what_sampling_skips(tmp_path, jsonl_corpus, monkeypatch):
    monkeypatch.setattr(shards, "SAMPLE_BLOCKS", 4)  # 4 blocks of 64 bytes in shards of 2000 bytes
    monkeypatch.setattr(shards, "SAMPLE_BLOCK_BYTES", 64)
    module = build_datamodule(corpus(tmp_path, jsonl_corpus), seed=0)
    assert module.manifest["sampling"] == {"blocks": 4, "block_bytes": 64}
    shard = module.folder / "train-00000.bin"
    data = bytearray(shard.read_bytes())
    assert len(data) == 2000
    data[100] ^= 0xFF  # between the first two sampled blocks
    shard.write_bytes(bytes(data))
    load_manifest(module.folder, "sample")
    with pytest.raises(ShardError, match=r"train-00000.bin of split 'train' has blake2b \w+, its manifest"):
        load_manifest(module.folder, "full")
    assert build_datamodule(corpus(tmp_path, jsonl_corpus, verify="sample"), 0).folder == module.folder
    assert shard.read_bytes() == bytes(data)  # sampling did not see it
    build_datamodule(corpus(tmp_path, jsonl_corpus, verify="full"), 0)
    assert shard.read_bytes() != bytes(data)  # rebuilt


def test_old_manifest_is_checked_in_full_then_gains_sampled_digests(tmp_path, jsonl_corpus, caplog):
    module = build_datamodule(corpus(tmp_path, jsonl_corpus), seed=0)
    path = module.folder / MANIFEST
    old = json.loads(path.read_text())
    del old["sampling"]
    for entry in old["splits"].values():
        for shard in entry["shards"]:
            del shard["sampled_blake2b"]
    path.write_text(json.dumps(old))
    shard = module.folder / "val-00000.bin"
    good = shard.read_bytes()
    shard.write_bytes(bytes(len(good)))
    with pytest.raises(ShardError, match=r"val-00000.bin of split 'val' has blake2b .*damaged content"):
        load_manifest(module.folder)  # no sampled digest: the full digest decides
    assert json.loads(path.read_text()) == old  # nothing recorded for a damaged cache
    shard.write_bytes(good)
    with caplog.at_level(logging.INFO):
        load_manifest(module.folder)
    assert "predates sampled digests" in caplog.text
    upgraded = json.loads(path.read_text())
    assert upgraded["sampling"] == {"blocks": SAMPLE_BLOCKS, "block_bytes": SAMPLE_BLOCK_BYTES}
    assert upgraded["splits"] == module.manifest["splits"]  # the same digests as a fresh build
    shard.write_bytes(bytes(len(good)))
    with pytest.raises(ShardError, match="sampled blocks"):
        load_manifest(module.folder)


def test_verify_command(tmp_path, jsonl_corpus, capsys):
    module = build_datamodule(corpus(tmp_path, jsonl_corpus), seed=0)
    assert main(["verify", str(module.folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["check"] == "full" and report["tokens"]["train"] > 0
    shard = module.folder / "train-00001.bin"
    data = bytearray(shard.read_bytes())
    data[7] ^= 1
    shard.write_bytes(bytes(data))
    assert main(["verify", str(module.folder), "full"]) == 1
    assert "train-00001.bin of split 'train' has blake2b" in capsys.readouterr().err
    assert main(["verify", str(module.folder), "quick"]) == 2
    assert np.array_equal(np.fromfile(shard, dtype=np.uint8), np.frombuffer(bytes(data), dtype=np.uint8))
