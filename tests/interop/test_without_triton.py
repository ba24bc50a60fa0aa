"""Triton is optional (wheels exist for Linux x86_64/aarch64 only): where it is not installed, every
model imports, trains a step and decodes on the PyTorch paths. Run in a subprocess that blocks the
``triton`` import, as on macOS or Windows."""

from __future__ import annotations

import subprocess
import sys

from evaluation_parts import REPO_ROOT, subprocess_env

WITHOUT_TRITON = """
import sys
sys.modules["triton"] = None  # as if not installed: import fails, find_spec returns None
import torch
from mamba_lm import kernels
import mamba_lm
import mamba_lm.configs
from mamba_lm.kernels.dispatch import triton_enabled
assert not triton_enabled(torch.device("cpu"))
for name in ("mamba_tiny", "s4d_tiny", "mamba_s4d_tiny", "transformer_tiny"):
    model = mamba_lm.build_model(mamba_lm.configs.get(name, vocab_size=32))
    ids = torch.randint(0, 32, (2, 12))
    model(ids).logits.float().logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad), name
    print(name, tuple(model.generate(ids[:, :3], max_new_tokens=4, top_k=1).shape))
assert "triton" not in {m.split(".")[0] for m, v in sys.modules.items() if v is not None}
"""


def test_models_train_and_decode_without_triton():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRITON],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=subprocess_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:4] == [
        f"{n} (2, 7)" for n in ("mamba_tiny", "s4d_tiny", "mamba_s4d_tiny", "transformer_tiny")
    ]
