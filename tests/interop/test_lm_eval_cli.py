"""``mamba-lm-eval``: lm-eval's own CLI (a subprocess, as a user runs it) with the model ``mamba_lm``,
``pretrained=`` as an alias of ``checkpoint=``, ``batch_size=auto`` and lm-eval's default cuda:0 device
falling back to the CPU, on offline local tasks; the metrics equal a direct computation."""

from __future__ import annotations

import json
import subprocess
import sys

from evaluation_parts import REPO_ROOT, subprocess_env, tiny_lm
from local_tasks import expected_metrics, write_tasks
from mamba_lm.evaluation.text_tokenizer import TextTokenizer

from mamba_lm import save_pretrained


def test_lm_eval_cli_with_the_mamba_lm_model(tmp_path, tokenizer_file):
    tokenizer = TextTokenizer.from_file(tokenizer_file)
    model = tiny_lm("mamba", tokenizer.vocab_size)
    folder = save_pretrained(model, tmp_path / "model")
    (folder / "tokenizer.json").write_bytes(tokenizer_file.read_bytes())
    docs = write_tasks(tmp_path / "tasks")
    out = tmp_path / "results"
    command = [sys.executable, "-m", "evaluation.harness_cli", "--model", "mamba_lm"]
    command += ["--model_args", f"pretrained={folder},dtype=float32", "--tasks", "local_mc,local_cloze"]
    command += ["--include_path", str(tmp_path / "tasks"), "--batch_size", "auto", "--output_path", str(out)]
    env = dict(subprocess_env(), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no CUDA GPU is available: using the CPU" in result.stderr
    saved = json.loads(next(out.rglob("results_*.json")).read_text())
    assert saved["config"]["model"] == "mamba_lm"
    expected = expected_metrics(model, tokenizer, docs)
    for task in ("local_mc", "local_cloze"):
        for metric, value in expected[task].items():
            assert abs(saved["results"][task][f"{metric},none"] - value) <= 1e-4 * max(1.0, abs(value))
