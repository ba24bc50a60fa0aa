"""The lm-eval model's interop arguments: ``pretrained=`` as an alias of ``checkpoint=``, ``batch_size=auto``
(a memory probe on a GPU, a fixed size on the CPU) and a CUDA request falling back to the CPU."""

from __future__ import annotations

import logging

import pytest
import torch
from evaluation_parts import tiny_lm
from local_tasks import write_tasks
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.harness_model import CPU_AUTO_BATCH_SIZE, MambaEvalLM
from mamba_lm.evaluation.results import load_results
from mamba_lm.evaluation.text_tokenizer import TextTokenizer

from mamba_lm import save_pretrained


@pytest.fixture
def saved(tmp_path, tokenizer_file):
    tokenizer = TextTokenizer.from_file(tokenizer_file)
    folder = save_pretrained(tiny_lm("mamba", tokenizer.vocab_size), tmp_path / "model")
    (folder / "tokenizer.json").write_bytes(tokenizer_file.read_bytes())
    return folder


def test_pretrained_alias_auto_batch_and_cpu_fallback(saved, caplog):
    with caplog.at_level(logging.WARNING):
        lm = MambaEvalLM(pretrained=str(saved), batch_size="auto", device="cuda:0")
    if not torch.cuda.is_available():
        assert lm.device == torch.device("cpu") and "using the CPU" in caplog.text
        assert lm.batch_size == CPU_AUTO_BATCH_SIZE
    assert (
        MambaEvalLM(checkpoint=str(saved), batch_size="auto:4", max_batch_size=2, device="cpu").batch_size
        == 2
    )
    with pytest.raises(ValueError, match="give one"):
        MambaEvalLM(checkpoint=str(saved), pretrained=str(saved / "other"))


@pytest.mark.gpu
def test_auto_batch_size_probes_gpu_memory(saved):
    lm = MambaEvalLM(pretrained=str(saved), batch_size="auto", max_batch_size=8, max_length=64, device="cuda")
    assert lm.device.type == "cuda" and lm.batch_size == 8  # a tiny model fits the limit
    big = MambaEvalLM(pretrained=str(saved), batch_size="auto", max_batch_size=1 << 16, max_length=4096)
    assert 8 < big.batch_size < 1 << 16 and big.batch_size & (big.batch_size - 1) == 0  # a power of two


def test_harness_command_takes_batch_size_auto(saved, tmp_path):
    write_tasks(tmp_path / "tasks")
    arguments = [f"checkpoint={saved}", "tasks=local_mc", f"include_path={tmp_path / 'tasks'}"]
    arguments += ["include_defaults=false", "batch_size=auto", "device=cpu", f"out={tmp_path / 'out'}"]
    assert main(["harness", *arguments]) == 0
    assert "acc" in load_results(tmp_path / "out", "harness")["local_mc"]
