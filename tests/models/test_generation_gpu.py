"""Decoding on a GPU: the captured CUDA graph replays exactly what eager decoding computes.

Run on the GPU machine: ``python -m pytest tests/models/test_generation_gpu.py -m gpu`` (alone or in the
whole GPU suite: every test here first fills the allocator's cached memory with NaN bytes, so that a
read of memory nobody wrote shows up whatever ran before).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from model_testing import relative_error, stepwise_logits

from mamba_lm import MambaConfig, TransformerConfig, build_model
from mamba_lm.static_decoder import _DECODERS, release_decoder

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
VOCAB = 1000
KINDS = ["mamba", "s4d", "transformer"]


@pytest.fixture(autouse=True)
def _dirty_cached_memory():
    """Leave 1 GiB of 0xFF bytes (NaN as any float, -1 as int64) in the caching allocator's free
    blocks, where the next allocations come from."""
    torch.cuda.synchronize()
    garbage = torch.full((1 << 30,), 0xFF, dtype=torch.uint8, device="cuda")
    del garbage
    yield
    torch.cuda.synchronize()


def medium_model(kind: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "transformer":
        config = TransformerConfig(d_model=256, n_layer=4, n_head=4, vocab_size=VOCAB)
    else:
        ssm_cfg = {"layer": "S4D"} if kind == "s4d" else {}
        config = MambaConfig(d_model=256, n_layer=4, vocab_size=VOCAB, ssm_cfg=ssm_cfg)
    return build_model(config).to(device="cuda", dtype=dtype).eval()


def cache_tensors(model) -> list[torch.Tensor]:
    """The kept decoder's states (conv / SSM states, KV caches), layer by layer."""
    params = _DECODERS[model][1].params
    states = params.key_value_memory_dict.values()
    return [t for state in states for t in (state if isinstance(state, tuple) else (state,))]


def describe_mismatch(got: torch.Tensor, want: torch.Tensor, prompt_len: int) -> str:
    differs = (got != want).any(dim=0).nonzero()
    first = int(differs[0]) - prompt_len if len(differs) else None
    return f"first differing new token: {first}; rows differing: {(got != want).any(dim=1).tolist()}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("precision", ["bf16-weights", "fp32-autocast"])
def test_graph_replay_equals_eager_decoding(kind, precision):
    dtype = torch.bfloat16 if precision == "bf16-weights" else torch.float32
    model = medium_model(kind, dtype)
    prompt = torch.randint(0, VOCAB, (5, 37), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "fp32-autocast"):
        # One step first: the prompt and the first token run eagerly in both, the second token is
        # the graph's first replay; the caches after it must agree bit for bit.
        eager_two = model.generate(prompt, max_new_tokens=2, top_k=1, cuda_graph=False)
        eager_states = [t.clone() for t in cache_tensors(model)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph_two = model.generate(prompt, max_new_tokens=2, top_k=1)
        assert _DECODERS[model][1].graph is not None, [str(w.message) for w in caught]
        for index, (got, want) in enumerate(zip(cache_tensors(model), eager_states)):
            assert torch.equal(got, want), f"cache tensor {index} differs after one replayed step"
        assert torch.equal(graph_two, eager_two)

        eager = model.generate(prompt, max_new_tokens=40, top_k=1, cuda_graph=False)
        graphed = model.generate(prompt, max_new_tokens=40, top_k=1)  # captures
        replayed = model.generate(prompt, max_new_tokens=40, top_k=1)  # the kept graph
    assert eager.shape == (5, 77)
    assert torch.equal(graphed, eager), describe_mismatch(graphed, eager, 37)
    assert torch.equal(replayed, eager), describe_mismatch(replayed, eager, 37)
    release_decoder(model)


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_steps_equal_the_parallel_forward(kind):
    model = medium_model(kind)
    ids = torch.randint(0, VOCAB, (3, 50), device="cuda")
    with torch.no_grad():
        assert relative_error(stepwise_logits(model, ids, prompt_len=20), model(ids).logits) < 5e-3


def test_seeded_sampling_is_the_same_captured_replayed_or_eager():
    """A replay draws from the default generator where the eager step would: the same seed gives the
    same tokens whether the call captures the graph, replays it, or decodes eagerly."""
    model = medium_model("mamba", torch.bfloat16)
    prompt = torch.randint(0, VOCAB, (8, 16), device="cuda")
    settings = dict(max_new_tokens=30, temperature=1.0, top_k=50, top_p=0.9)
    runs = {}
    for name, cuda_graph in [("captures", True), ("replays", True), ("eager", False)]:
        torch.manual_seed(3)
        runs[name] = model.generate(prompt, **settings, cuda_graph=cuda_graph)
    assert runs["captures"].max() < VOCAB
    for name in ("replays", "eager"):
        assert torch.equal(runs[name], runs["captures"]), (
            name + ": " + describe_mismatch(runs[name], runs["captures"], 16)
        )
    torch.manual_seed(4)
    assert not torch.equal(model.generate(prompt, **settings), runs["eager"])  # the seed matters


def test_eos_inside_the_graph():
    model = medium_model("mamba", torch.bfloat16)
    prompt = torch.randint(0, VOCAB, (8, 16), device="cuda")
    greedy = model.generate(prompt, max_new_tokens=30, top_k=1, cuda_graph=False)
    eos = int(greedy[0, 18])
    graphed = model.generate(prompt, max_new_tokens=30, top_k=1, eos_token_id=eos)
    eager = model.generate(prompt, max_new_tokens=30, top_k=1, eos_token_id=eos, cuda_graph=False)
    assert torch.equal(graphed, eager), describe_mismatch(graphed, eager, 16)


def test_a_new_model_at_a_freed_models_address_gets_its_own_graph():
    """Models built one after another reuse the same memory: each must decode with its own graph."""
    prompt = torch.randint(0, VOCAB, (2, 9), device="cuda")
    for seed in range(3):
        torch.manual_seed(seed)
        model = build_model(MambaConfig(d_model=128, n_layer=2, vocab_size=VOCAB)).cuda().eval()
        graphed = model.generate(prompt, max_new_tokens=12, top_k=1)
        eager = model.generate(prompt, max_new_tokens=12, top_k=1, cuda_graph=False)
        assert torch.equal(graphed, eager), f"model {seed}: " + describe_mismatch(graphed, eager, 9)
        del model
