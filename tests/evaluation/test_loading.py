"""Checkpoint formats for evaluation: sharded HF weights, the reference layout, and refusals that name
the cause (pickled code, hybrid configs, other model types, damaged files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from evaluation_parts import tiny_lm
from mamba_lm.evaluation.loading import load_for_eval, resolve_device, resolve_dtype

from mamba_lm.hf import to_hf


class Payload:
    """Any class outside torch's weights-only allowlist: unpickling it would run arbitrary code."""


REFERENCE_CONFIG = {
    "d_model": 32,
    "n_layer": 2,
    "vocab_size": 50,
    "ssm_cfg": {},
    "pad_vocab_size_multiple": 8,
}


def test_sharded_hugging_face_weights_load_with_equal_logits(tmp_path: Path, tokenizer_file: Path) -> None:
    model = tiny_lm("mamba", 50)
    folder = tmp_path / "hf"
    to_hf(model).save_pretrained(folder, max_shard_size="20KB")
    assert (folder / "model.safetensors.index.json").is_file()
    shutil.copy(tokenizer_file, folder)
    loaded = load_for_eval(folder)
    assert loaded.kind == "hf" and loaded.tokenizer is not None
    tokens = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        assert torch.allclose(loaded.model(tokens).logits, model(tokens).logits, atol=1e-5)


def test_reference_layout_loads_and_pickled_objects_are_refused(tmp_path: Path) -> None:
    model = tiny_lm("mamba", 50)
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(REFERENCE_CONFIG))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    loaded = load_for_eval(folder, require_tokenizer=False)
    assert loaded.kind == "mamba_ssm"
    tokens = torch.randint(0, 50, (1, 7))
    with torch.no_grad():
        assert torch.allclose(loaded.model(tokens).logits, model(tokens).logits, atol=1e-6)

    # a .bin holding anything but tensors would need to run pickled code: refused
    torch.save({"weights": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load_for_eval(folder, require_tokenizer=False)


def test_unsupported_or_damaged_checkpoints_name_the_cause(tmp_path: Path) -> None:
    hybrid = tmp_path / "hybrid"
    hybrid.mkdir()
    (hybrid / "config.json").write_text(json.dumps({**REFERENCE_CONFIG, "attn_layer_idx": [1]}))
    torch.save(tiny_lm("mamba", 50).state_dict(), hybrid / "pytorch_model.bin")
    with pytest.raises(ValueError, match="hybrid models"):
        load_for_eval(hybrid, require_tokenizer=False)

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    (damaged / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_for_eval(damaged, require_tokenizer=False)

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps(REFERENCE_CONFIG))
    with pytest.raises(FileNotFoundError, match="has a config.json but no weights"):
        load_for_eval(no_weights, require_tokenizer=False)


def test_device_and_dtype_names() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
