"""benchmarks/input_sensitivity.py: the per-position gradient it reports, and the script on the CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

from mamba_lm.config import ClassifierConfig
from mamba_lm.models.classifier import SequenceClassifier

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "input_sensitivity.py"
spec = importlib.util.spec_from_file_location("input_sensitivity", SCRIPT)
input_sensitivity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(input_sensitivity)


def test_a_causal_model_pooled_at_the_last_position_is_blind_to_the_padding_after_it():
    """Each row's output is its last real position's: with one-direction (causal) mixers no later position
    can reach it (up to the FFT convolution's rounding), every earlier one does."""
    torch.manual_seed(0)
    config = ClassifierConfig(
        num_classes=3, vocab_size=11, d_model=16, n_layer=2, mixer="s4d", pooling="last"
    )
    model = SequenceClassifier(config)
    lengths = torch.tensor([12, 20])
    batch = {"input_ids": torch.randint(1, 11, (2, 20)), "lengths": lengths, "labels": torch.tensor([0, 2])}
    per_row = []
    for row in range(2):  # one row at a time: the batch mean would mix their padding
        single = {key: value[row : row + 1] for key, value in batch.items()}
        per_row.append(input_sensitivity.position_sensitivity(model, single))
    assert torch.all(per_row[0][:12] > 1e-4) and torch.all(per_row[0][12:] < 1e-6 * per_row[0].max())
    assert torch.all(per_row[1] > 1e-4)


def test_the_script_prints_a_row_per_model_and_the_same_numbers_for_the_same_seeded_model(tmp_path):
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    rows = [
        ["--row", "s4d", "lra/quick/listops", cache],
        ["--row", "s4d again", "lra/quick/listops", cache],
        ["--row", "mamba", "lra/quick/listops", "model.mixer=mamba", "optim.param_groups=[]", cache],
    ]
    command = [sys.executable, str(SCRIPT), "--batch", "4"]
    result = subprocess.run(command + sum(rows, []), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout.splitlines()[-3:]
    values = {" ".join(line.split()[:-5]): line.split()[-5:] for line in table}
    assert list(values) == ["s4d", "s4d again", "mamba"]
    assert values["s4d"] == values["s4d again"] and values["mamba"] != values["s4d"]
    assert all(float(v) > 0 for v in values["mamba"][:4])
