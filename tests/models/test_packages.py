"""Package names: our top-level ``kernels`` must not pass for the Hugging Face ``kernels`` hub client, and
``mamba_lm`` must import where only torch, triton and transformers exist (the GPU machine)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch
import transformers
from transformers.utils import import_utils

import kernels

REPO = Path(__file__).resolve().parents[2]


def test_our_kernels_package_is_the_one_found():
    spec = importlib.util.find_spec("kernels")
    assert spec is not None and Path(spec.origin).resolve().is_relative_to(REPO)
    assert hasattr(kernels, "selective_scan_fn")


def test_transformers_does_not_take_it_for_the_hub_kernels_package():
    assert import_utils.is_kernels_available() is False


def test_transformers_mamba_and_llama_still_build_and_run():
    ids = torch.randint(0, 32, (1, 6))
    mamba = transformers.MambaForCausalLM(
        transformers.MambaConfig(vocab_size=32, hidden_size=16, state_size=4, num_hidden_layers=1)
    )
    llama = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    )
    for model in (mamba, llama):
        logits = model(ids).logits
        assert logits.shape == (1, 6, 32) and torch.isfinite(logits).all()


BLOCKED = ("hydra", "omegaconf", "datasets", "wandb", "lm_eval")

IMPORT_WITHOUT_EXTRAS = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # as if not installed: import fails, find_spec returns None
import torch, mamba_lm, mamba_lm.hf, mamba_lm.configs
model = mamba_lm.build_model(mamba_lm.configs.get("mamba_tiny", vocab_size=32))
print(model(torch.zeros(1, 3, dtype=torch.long)).logits.shape)
"""


def test_mamba_lm_imports_without_the_training_only_packages():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_EXTRAS], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torch.Size([1, 3, 32])" in result.stdout
