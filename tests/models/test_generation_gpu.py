"""Decoding on a GPU: the captured CUDA graph replays exactly what eager decoding computes.

Run on the GPU machine: ``python -m pytest tests/models/test_generation_gpu.py -m gpu``.
"""

from __future__ import annotations

import pytest
import torch
from model_testing import relative_error, stepwise_logits

from mamba_lm import MambaConfig, TransformerConfig, build_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
VOCAB = 1000
KINDS = ["mamba", "s4d", "transformer"]


def medium_model(kind: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "transformer":
        config = TransformerConfig(d_model=256, n_layer=4, n_head=4, vocab_size=VOCAB)
    else:
        ssm_cfg = {"layer": "S4D"} if kind == "s4d" else {}
        config = MambaConfig(d_model=256, n_layer=4, vocab_size=VOCAB, ssm_cfg=ssm_cfg)
    return build_model(config).to(device="cuda", dtype=dtype).eval()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("precision", ["bf16-weights", "fp32-autocast"])
def test_graph_replay_equals_eager_decoding(kind, precision):
    dtype = torch.bfloat16 if precision == "bf16-weights" else torch.float32
    model = medium_model(kind, dtype)
    prompt = torch.randint(0, VOCAB, (5, 37), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "fp32-autocast"):
        eager = model.generate(prompt, max_new_tokens=40, top_k=1, cuda_graph=False)
        graphed = model.generate(prompt, max_new_tokens=40, top_k=1)  # captures
        replayed = model.generate(prompt, max_new_tokens=40, top_k=1)  # the kept graph
    assert eager.shape == (5, 77)
    assert torch.equal(graphed, eager) and torch.equal(replayed, eager)


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_steps_equal_the_parallel_forward(kind):
    model = medium_model(kind)
    ids = torch.randint(0, VOCAB, (3, 50), device="cuda")
    with torch.no_grad():
        assert relative_error(stepwise_logits(model, ids, prompt_len=20), model(ids).logits) < 5e-3


def test_sampling_and_eos_inside_the_graph():
    model = medium_model("mamba", torch.bfloat16)
    prompt = torch.randint(0, VOCAB, (8, 16), device="cuda")
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(model.generate(prompt, max_new_tokens=30, temperature=1.0, top_k=50, top_p=0.9))
    assert torch.equal(runs[0], runs[1]) and runs[0].max() < VOCAB
    greedy = model.generate(prompt, max_new_tokens=30, top_k=1, cuda_graph=False)
    eos = int(greedy[0, 18])
    graphed = model.generate(prompt, max_new_tokens=30, top_k=1, eos_token_id=eos)
    eager = model.generate(prompt, max_new_tokens=30, top_k=1, eos_token_id=eos, cuda_graph=False)
    assert torch.equal(graphed, eager)
