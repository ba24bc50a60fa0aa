"""Recurrent decoding: step-by-step logits equal the parallel forward; sampling; generate."""

from __future__ import annotations

import pytest
import torch
from model_testing import VOCAB, relative_error, stepwise_logits, tiny_config

from mamba_lm import InferenceParams, build_model
from mamba_lm.generation import sample
from mamba_lm.static_decoder import (
    _DECODERS,
    Sampling,
    decoder_for,
    inference_cache_bytes,
    release_decoder,
)

KINDS = ["mamba", "s4d", "mamba_s4d", "transformer"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prompt_len", [1, 2, 7])  # 2 < the conv width: the conv state is left-padded
def test_stepwise_logits_equal_the_parallel_forward(kind, prompt_len):
    model = build_model(tiny_config(kind))
    ids = torch.randint(0, VOCAB, (2, 14))
    full = model(ids).logits
    assert relative_error(stepwise_logits(model, ids, prompt_len), full) <= 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_generation_is_the_argmax_of_the_parallel_forward(kind):
    model = build_model(tiny_config(kind))
    prompt = torch.randint(0, VOCAB, (3, 4))
    out = model.generate(prompt, max_new_tokens=8, top_k=1)
    assert out.shape == (3, 12) and torch.equal(out[:, :4], prompt)
    logits = model(out).logits[:, 3:-1, :VOCAB]
    assert torch.equal(out[:, 4:], logits.argmax(-1))


def test_sampling_never_returns_padded_vocab_rows():
    model = build_model(tiny_config("mamba"))
    with torch.no_grad():  # make the padded rows (50..55) the most likely by far
        model.backbone.embedding.weight[VOCAB:] = 5 * model.backbone.norm_f.weight
    out = model.generate(torch.zeros(4, 2, dtype=torch.long), max_new_tokens=10, temperature=1.0)
    assert out.max() < VOCAB


def test_eos_stops_and_pads():
    model = build_model(tiny_config("mamba"))
    prompt = torch.randint(0, VOCAB, (2, 3))
    greedy = model.generate(prompt, max_new_tokens=6, top_k=1)
    eos = int(greedy[0, 4])  # the second token row 0 produces
    out = model.generate(prompt, max_new_tokens=6, top_k=1, eos_token_id=eos)
    assert out.shape[1] <= 9
    assert torch.equal(out[0, :5], greedy[0, :5])
    for row in out:
        hits = (row[3:] == eos).nonzero()
        if len(hits):
            assert (row[3 + int(hits[0]) :] == eos).all()


def test_sample_filters():
    logits = torch.tensor([[0.0, 3.0, 2.0, 1.0, -1.0]]).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    assert set(sample(logits, top_k=2, generator=g).tolist()) == {1, 2}
    probs = torch.softmax(logits[0], -1)  # 0.64, 0.24, ...: top_p = 0.7 keeps tokens 1 and 2
    assert probs[1] < 0.7 < probs[1] + probs[2]
    assert set(sample(logits, top_p=0.7, generator=g).tolist()) == {1, 2}
    assert set(sample(logits, top_p=0.5, generator=g).tolist()) == {1}
    assert set(sample(logits, temperature=0).tolist()) == {1}
    frequencies = torch.bincount(sample(logits, generator=g), minlength=5) / 2000
    assert torch.allclose(frequencies, probs, atol=0.04)
    with pytest.raises(ValueError, match="top_p"):
        sample(logits, top_p=0.0)


def test_seeded_sampling_is_reproducible():
    model = build_model(tiny_config("transformer"))
    prompt = torch.randint(0, VOCAB, (2, 3))
    runs = [
        model.generate(prompt, 6, top_p=0.9, generator=torch.Generator().manual_seed(5)) for _ in range(2)
    ]
    assert torch.equal(*runs)


@pytest.mark.parametrize("kind", KINDS)
def test_cache_misuse_is_named(kind):
    model = build_model(tiny_config(kind))
    ids = torch.randint(0, VOCAB, (1, 5))
    params = InferenceParams(max_seqlen=8, max_batch_size=1)
    model(ids, inference_params=params)
    params.seqlen_offset = 5
    with pytest.raises(ValueError, match="one token"):
        model(ids[:, :2], inference_params=params)
    with pytest.raises(ValueError, match="seq_idx"):
        model(ids, seq_idx=torch.zeros(1, 5, dtype=torch.int32), inference_params=InferenceParams(8, 1))
    with pytest.raises(ValueError, match="batches of up to"):
        model(torch.zeros(2, 1, dtype=torch.long), inference_params=params)


@pytest.mark.parametrize("kind", KINDS)
def test_decoding_under_bf16_autocast(kind):
    """The GPU runs fp32 weights under bf16 autocast: the cached states must fit that too."""
    model = build_model(tiny_config(kind))
    ids = torch.randint(0, VOCAB, (2, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stepwise = stepwise_logits(model, ids, prompt_len=4)
        out = model.generate(ids[:, :4], max_new_tokens=5, top_k=1)
    assert relative_error(stepwise.float(), model(ids).logits) < 0.05
    assert out.shape == (2, 9) and out.max() < VOCAB


def test_cache_keeps_its_batch_size():
    model = build_model(tiny_config("mamba"))
    params = InferenceParams(max_seqlen=8, max_batch_size=4)
    model(torch.zeros(3, 2, dtype=torch.long), inference_params=params)
    params.seqlen_offset = 2
    with pytest.raises(ValueError, match="states for batch 3"):
        model(torch.zeros(2, 1, dtype=torch.long), inference_params=params)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_with_prompts_of_different_lengths_decode_as_alone(kind):
    """The static decoder keeps rows of different prompt lengths in step (each reads its own prompt
    first): every row's tokens equal that prompt decoded on its own."""
    model = build_model(tiny_config(kind))
    lengths = [2, 5, 3]
    prompts = torch.randint(0, VOCAB, (3, 5))
    decoder = decoder_for(model, 3, 5 + 6, Sampling(top_k=1), None, VOCAB, torch.device("cpu"), False)
    with torch.no_grad():
        tokens = decoder.run(prompts, lengths, max_new_tokens=6)
    for row, length in enumerate(lengths):
        alone = model.generate(prompts[row : row + 1, :length], max_new_tokens=6, top_k=1)
        assert torch.equal(tokens[row, : length + 6], alone[0])


def test_the_decoder_is_kept_while_the_settings_match():
    model = build_model(tiny_config("transformer"))
    prompt = torch.randint(0, VOCAB, (2, 4))
    first = model.generate(prompt, max_new_tokens=6, top_k=1)
    decoder = _DECODERS[model][1]
    assert torch.equal(model.generate(prompt, max_new_tokens=3, top_k=1), first[:, :7])
    assert _DECODERS[model][1] is decoder  # shorter: the same static buffers
    assert torch.equal(model.generate(prompt, max_new_tokens=6, top_k=1, cuda_graph=False), first)
    model.generate(prompt, max_new_tokens=9, top_k=1)
    assert _DECODERS[model][1] is not decoder  # longer than it holds: a new one
    model.generate(torch.randint(0, VOCAB, (3, 4)), max_new_tokens=2, top_k=1)
    assert _DECODERS[model][1].batch_size == 3
    release_decoder(model)
    assert model not in _DECODERS


def test_cache_size_on_the_meta_device():
    model = build_model(tiny_config("transformer"))  # 2 layers x (k, v) x (batch, 4 heads, len, 8) fp32
    rope_tables = 2 * 2 * 10 * 8 * 4
    assert inference_cache_bytes(model, 3, 10) == 2 * 2 * 3 * 10 * 32 * 4 + rope_tables
    mamba = build_model(tiny_config("mamba"))  # conv (batch, 64, 4) and state (batch, 64, 8) per layer
    assert inference_cache_bytes(mamba, 3, 10) == 2 * 3 * 64 * (4 + 8) * 4
    s4d = build_model(tiny_config("s4d"))  # a complex64 state (batch, 32, 4) per layer
    assert inference_cache_bytes(s4d, 3, 10) == 2 * 3 * 32 * 4 * 8


def test_generate_names_bad_ids_and_handles_edge_lengths():
    model = build_model(tiny_config("mamba"))
    with pytest.raises(ValueError, match="padded vocabulary"):
        model.generate(torch.full((1, 3), 56), max_new_tokens=2)
    one = torch.tensor([[7]])
    assert torch.equal(model.generate(one, max_new_tokens=0), one)
    assert model.generate(one, max_new_tokens=1, top_k=1).shape == (1, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_sampling_with_the_default_generator_is_reproducible(kind):
    """torch.manual_seed before each call: the same tokens from a new decoder and from the kept one."""
    model = build_model(tiny_config(kind))
    prompt = torch.randint(0, VOCAB, (3, 4))
    runs = []
    for _ in range(3):
        torch.manual_seed(3)
        runs.append(model.generate(prompt, max_new_tokens=8, top_k=20, top_p=0.9))
        if len(runs) == 2:
            release_decoder(model)  # the third call builds a new decoder
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    torch.manual_seed(4)
    assert not torch.equal(model.generate(prompt, max_new_tokens=8, top_k=20, top_p=0.9), runs[0])


@pytest.mark.parametrize("kind", KINDS)
def test_what_a_kept_decoder_holds_from_before_does_not_matter(kind):
    """Fill every buffer of a kept decoder (states, KV caches, tokens, flags) with other values: the
    next run decodes as a new decoder does."""
    model = build_model(tiny_config(kind))
    prompt = torch.randint(0, VOCAB, (2, 5))
    fresh = model.generate(prompt, max_new_tokens=6, top_k=1, eos_token_id=7)
    decoder = _DECODERS[model][1]
    states = decoder.params.key_value_memory_dict.values()
    with torch.no_grad():
        for tensor in [t for s in states for t in (s if isinstance(s, tuple) else (s,))]:
            if tensor.dtype.is_complex:
                tensor.copy_(torch.randn_like(tensor.real) * 1j + 3.0)
            elif tensor.dim() == 4:  # KV caches
                tensor.normal_(0.0, 30.0)
        decoder.tokens.random_(0, VOCAB)
        decoder.finished.fill_(True)
        decoder.input_ids.fill_(3)
        decoder.params.position.fill_(9)
    assert torch.equal(model.generate(prompt, max_new_tokens=6, top_k=1, eos_token_id=7), fresh)
    assert _DECODERS[model][1] is decoder


def test_the_decoder_is_rebuilt_when_what_the_step_runs_changes():
    from mamba_lm.modules.fusion import set_fused

    model = build_model(tiny_config("mamba")).eval()
    prompt = torch.randint(0, VOCAB, (2, 4))
    model.generate(prompt, max_new_tokens=2, top_k=1)

    def new_storage():  # a step captured earlier would still read the old address
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())

    for change in (lambda: set_fused(model, False), model.train, new_storage):
        before = _DECODERS[model][1]
        change()
        model.generate(prompt, max_new_tokens=2, top_k=1)
        assert _DECODERS[model][1] is not before
