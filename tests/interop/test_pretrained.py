"""``mamba_lm.from_pretrained`` reads every folder kind (run, checkpoint, transformers, reference package,
save_pretrained) to the same logits; checkpoints hold no file transformers takes for its config;
``load_pretrained_weights`` (the training key ``model.init_from``) copies weights or names the mismatch."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from helpers import tiny_trainer  # the trainer tests' tiny run (tests/training, see conftest)

import mamba_lm
from mamba_lm import MambaConfig, MambaLMHeadModel, TransformerConfig, TransformerLMHeadModel, build_model
from mamba_lm.hf import to_hf
from mamba_lm.pretrained import folder_format, load_pretrained_weights, save_pretrained
from mamba_lm.trainer.checkpoint import LEGACY_CONFIG_FILE, list_checkpoints, read_run_config
from mamba_lm.trainer.state_io import write_manifest

VOCAB = 50


def _model(kind: str, tie: bool = True, **overrides):
    torch.manual_seed(0)
    if kind == "mamba":
        config = MambaConfig(
            d_model=32, n_layer=2, vocab_size=VOCAB, d_state=8, tie_embeddings=tie, **overrides
        )
    else:
        config = TransformerConfig(d_model=32, n_layer=2, n_head=4, vocab_size=VOCAB, tie_embeddings=tie)
    model = build_model(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _same_logits(a, b, atol=1e-5, vocab=VOCAB) -> bool:
    ids = torch.randint(0, vocab, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.allclose(a(ids).logits, b(ids).logits, atol=atol)


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("kind", ["mamba", "transformer"])
def test_save_pretrained_and_hf_folders_load_back(kind, tie, tmp_path):
    model = _model(kind, tie)
    saved = save_pretrained(model, tmp_path / "saved")
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    assert folder_format(saved) == "saved"
    back = mamba_lm.from_pretrained(saved)
    assert type(back) is type(model) and _same_logits(back, model)
    assert (back.lm_head.weight is back.backbone.embedding.weight) == tie

    to_hf(model).save_pretrained(tmp_path / "hf")
    assert folder_format(tmp_path / "hf") == "hf"
    from_hf_folder = mamba_lm.from_pretrained(tmp_path / "hf")
    assert type(from_hf_folder) is type(model) and _same_logits(from_hf_folder, model)


def test_reference_package_folder_and_device_dtype(tmp_path):
    model = _model("mamba")
    folder = tmp_path / "reference"
    folder.mkdir()
    reference_config = {  # the fields mamba_ssm writes, its SSM options inside ssm_cfg
        "d_model": 32,
        "d_intermediate": 0,
        "n_layer": 2,
        "vocab_size": VOCAB,
        "ssm_cfg": {"layer": "Mamba1", "d_state": 8},
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": 8,
        "tie_embeddings": True,
    }
    (folder / "config.json").write_text(json.dumps(reference_config))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    assert folder_format(folder) == "mamba_ssm"
    loaded = mamba_lm.from_pretrained(folder)
    assert loaded.config.d_state == 8 and _same_logits(loaded, model)
    bf16 = mamba_lm.from_pretrained(folder, device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    assert not bf16.training


def test_run_and_checkpoint_folders_and_no_transformers_config_inside(accelerator, tmp_path):
    run = tmp_path / "run"
    trainer = tiny_trainer(accelerator, run, max_steps=2, save_every=1, keep_last=2)
    trainer.fit()
    newest = list_checkpoints(run)[0]
    assert not (newest / "config.json").exists()  # transformers would read it as a model config
    assert read_run_config(newest)["model"]["arch"] == "mamba"
    from_run, from_checkpoint = mamba_lm.from_pretrained(run), mamba_lm.from_pretrained(newest)
    assert folder_format(run) == folder_format(newest) == "run"
    assert torch.equal(from_run.lm_head.weight, trainer.unwrapped_model.lm_head.weight.cpu())
    assert _same_logits(from_run, from_checkpoint, atol=0, vocab=32)
    with pytest.raises((OSError, ValueError), match="config.json"):  # no model config for transformers
        transformers.AutoConfig.from_pretrained(newest)

    # a checkpoint written before the rename (config.json) still loads
    (newest / "run_config.json").rename(newest / LEGACY_CONFIG_FILE)
    write_manifest(newest, 2)
    assert read_run_config(newest)["model"]["arch"] == "mamba"
    assert _same_logits(mamba_lm.from_pretrained(newest), from_run, atol=0, vocab=32)


def test_folders_that_hold_no_model_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mamba_lm.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a run folder"):
        mamba_lm.from_pretrained(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"hidden": 3}))
    with pytest.raises(ValueError, match="neither a transformers config"):
        mamba_lm.from_pretrained(tmp_path / "odd")


def test_load_pretrained_weights_copies_or_names_the_mismatch(tmp_path):
    source = _model("mamba", dt_min=0.002)  # an init-only field may differ
    save_pretrained(source, tmp_path / "source")
    target = build_model(MambaConfig(d_model=32, n_layer=2, vocab_size=VOCAB + 3, d_state=8))  # pads alike
    load_pretrained_weights(target, tmp_path / "source")
    assert _same_logits(target.eval(), source)

    wider = build_model(MambaConfig(d_model=48, n_layer=2, vocab_size=VOCAB, d_state=8))
    with pytest.raises(ValueError, match=r"d_model: this run 48, stored 32.*model=\.\.\."):
        load_pretrained_weights(wider, tmp_path / "source")
    other_eps = build_model(
        MambaConfig(d_model=32, n_layer=2, vocab_size=VOCAB, d_state=8, norm_epsilon=1e-6)
    )
    with pytest.raises(ValueError, match="norm_epsilon"):
        load_pretrained_weights(other_eps, tmp_path / "source")
    transformer = build_model(TransformerConfig(d_model=32, n_layer=2, n_head=4, vocab_size=VOCAB))
    with pytest.raises(
        ValueError, match="holds a MambaLMHeadModel; this run builds a TransformerLMHeadModel"
    ):
        load_pretrained_weights(transformer, tmp_path / "source")


def test_model_class_methods_in_the_reference_style(tmp_path):
    model = _model("transformer")
    model.save_pretrained(tmp_path / "t")
    back = TransformerLMHeadModel.from_pretrained(tmp_path / "t", dtype=torch.float64)
    assert back.lm_head.weight.dtype == torch.float64
    assert torch.allclose(back.lm_head.weight.float(), model.lm_head.weight)
    with pytest.raises(TypeError, match="holds a TransformerLMHeadModel, not a MambaLMHeadModel"):
        MambaLMHeadModel.from_pretrained(tmp_path / "t")


def test_hub_repository_ids_are_downloaded_first(tmp_path, monkeypatch):
    model = _model("mamba")
    save_pretrained(model, tmp_path / "snapshot")
    asked = []

    def snapshot_download(repo_id, allow_patterns):  # huggingface_hub's call, answered from disk
        asked.append((repo_id, allow_patterns))
        if repo_id != "someone/tiny-mamba":
            raise RuntimeError(f"Repository Not Found for url: https://huggingface.co/{repo_id}")
        return str(tmp_path / "snapshot")

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    assert _same_logits(mamba_lm.from_pretrained("someone/tiny-mamba"), model)
    assert asked[0][0] == "someone/tiny-mamba" and "*.safetensors" in asked[0][1]
    with pytest.raises(FileNotFoundError, match="not a local path, and no Hugging Face Hub repository"):
        mamba_lm.from_pretrained("outputs/run_that_is_not_there")
    assert len(asked) == 2  # a local folder never asks the Hub
    mamba_lm.from_pretrained(tmp_path / "snapshot")
    assert len(asked) == 2
