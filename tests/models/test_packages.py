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

from mamba_lm import kernels

REPO = Path(__file__).resolve().parents[2]


def test_our_kernels_package_is_the_one_found():
    spec = importlib.util.find_spec("mamba_lm.kernels")
    assert spec is not None and Path(spec.origin).resolve().is_relative_to(REPO)
    assert hasattr(kernels, "selective_scan_fn")


SHORT_NAMES = """
import kernels, data, evaluation, mamba_lm.kernels, mamba_lm.data, mamba_lm.evaluation
from kernels import selective_scan_fn
from kernels.selective_scan import interface
from data.lra.listops import generate
import mamba_lm.data.lra.listops
assert kernels is mamba_lm.kernels and data is mamba_lm.data and evaluation is mamba_lm.evaluation
assert selective_scan_fn is mamba_lm.kernels.selective_scan_fn
assert interface is sys.modules["mamba_lm.kernels.selective_scan.interface"]
assert generate is mamba_lm.data.lra.listops.generate
"""


def test_short_names_in_a_checkout_are_the_same_modules():
    """From the checkout's root, ``from kernels import ...`` and ``data.*`` give the mamba_lm.* modules."""
    code = "import sys\n" + SHORT_NAMES
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_short_names_elsewhere_are_left_to_other_packages(tmp_path):
    """Outside the checkout, ``kernels`` / ``data`` are whatever the user has; mamba_lm still imports."""
    for package in ("kernels", "data"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("OWNER = 'user'\n")
    code = (
        "import kernels, data, mamba_lm, mamba_lm.kernels, mamba_lm.data\n"
        "assert kernels.OWNER == data.OWNER == 'user'\n"
        "assert hasattr(mamba_lm.kernels, 'selective_scan_fn')\n"
        "assert hasattr(mamba_lm.data, 'build_datamodule')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


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
