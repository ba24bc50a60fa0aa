"""metrics.jsonl, plots, the progress-bar text, wandb offline, and the FLOPs count behind MFU."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny_mamba, tiny_trainer
from PIL import Image

from mamba_lm import MambaConfig, TransformerConfig, TransformerLMHeadModel, build_model
from mamba_lm.trainer.flops import matmul_parameter_count, model_flops_per_token, peak_flops_per_device
from mamba_lm.trainer.metrics import format_postfix, read_metrics


def test_metrics_jsonl_and_plots(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, max_steps=6, log_every=2, eval_every=3, peak_flops=1e12).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 3, 4, 6]  # every log_every, plus evaluation steps
    for record in records:
        expected = {"step", "loss", "lr", "tokens_per_s", "grad_norm", "mfu", "memory_gb", "tokens"}
        assert expected <= set(record)
        assert record["tokens_per_s"] > 0 and 0 < record["mfu"] < 1 and record["memory_gb"] > 0
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    assert all(math.isclose(r["val_ppl"], math.exp(r["val_loss"])) for r in records if "val_loss" in r)
    assert records[-1]["tokens"] == 6 * 4 * 16
    for name in ("loss.png", "lr.png"):
        with Image.open(tmp_path / "plots" / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200


def test_loss_goes_down_on_a_learnable_stream(accelerator, tmp_path):
    tiny_trainer(accelerator, tmp_path, lr=2e-2, max_steps=30, log_every=10, eval_every=15).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    losses = [r["loss"] for r in records]
    assert losses[-1] < losses[0] - 0.3, losses
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert val[-1] < val[0]


def test_wandb_offline_run_folder(accelerator, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from helpers import CountingLoader, validation_batches

    from mamba_lm.trainer import LoggerConfig, OptimConfig, Trainer, TrainerConfig

    trainer = Trainer(
        accelerator=accelerator,
        model=tiny_mamba(),
        train_loader=CountingLoader(4),
        run_dir=tmp_path,
        run_config={"model": {}, "seed": 0},
        optim=OptimConfig(),
        trainer=TrainerConfig(max_steps=2, log_every=1, save_every=0, progress_bar=False, plots=False),
        logger=LoggerConfig(project="tests"),
        val_loader=validation_batches,
    )
    trainer.fit()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))


def test_progress_bar_text():
    text = format_postfix(
        {"loss": 2.5, "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 12345.6, "mfu": 0.42, "memory_gb": 3.21}
    )
    assert text == "loss=2.5000 lr=1.00e-03 gnorm=0.50 tok/s=12,346 mfu=42.0% mem=3.2GB"


def test_flops_per_token():
    mamba = build_model(MambaConfig(d_model=64, n_layer=2, vocab_size=100), device="meta")
    params = sum(p.numel() for p in mamba.parameters())
    assert matmul_parameter_count(mamba) == params  # tied embedding stands for the LM head's matmul
    scan = 3 * 9 * 2 * 128 * 16  # 3 x 9 FLOPs x layers x d_inner x d_state
    assert model_flops_per_token(mamba, seqlen=512) == 6 * params + scan

    config = TransformerConfig(d_model=64, n_layer=2, n_head=4, vocab_size=100, tie_embeddings=False)
    transformer = TransformerLMHeadModel(config, device="meta")
    embedding = transformer.backbone.embedding.weight.numel()
    total = sum(p.numel() for p in transformer.parameters())
    assert matmul_parameter_count(transformer) == total - embedding  # an untied lookup costs no FLOPs
    assert model_flops_per_token(transformer, seqlen=512) == 6 * (total - embedding) + 12 * 2 * 64 * 512


def test_peak_flops():
    assert peak_flops_per_device(torch.device("cpu")) is None
    assert peak_flops_per_device(torch.device("cpu"), configured=2e12) == 2e12


@pytest.mark.parametrize("accelerator", ["bf16"], indirect=True)
def test_bf16_autocast_keeps_fp32_master_weights(accelerator, tmp_path):
    assert accelerator.mixed_precision == "bf16"
    model = tiny_mamba()
    tiny_trainer(accelerator, tmp_path, model=model, max_steps=4, eval_every=4).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert all(math.isfinite(r["loss"]) for r in records) and math.isfinite(records[-1]["val_loss"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    from mamba_lm.trainer.state_io import load_tensors

    weights = load_tensors(tmp_path / "checkpoints" / "step_00000004" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
