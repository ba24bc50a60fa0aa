"""The lm-eval model ``mamba_lm``: its scores equal direct log-likelihoods, its generations equal the
model's own greedy decoding and stop at stop strings."""

from __future__ import annotations

import pytest
import torch
from evaluation_parts import direct_logprob, tiny_lm
from lm_eval.api.instance import Instance
from lm_eval.utils import get_rolling_token_windows
from mamba_lm.evaluation.harness_model import MambaEvalLM


def instances(request_type: str, arguments: list[tuple]) -> list[Instance]:
    return [Instance(request_type, {}, args, index) for index, args in enumerate(arguments)]


@pytest.fixture(params=["mamba", "transformer"])
def lm(request, text_tokenizer) -> MambaEvalLM:
    model = tiny_lm(request.param, text_tokenizer.vocab_size)
    return MambaEvalLM(model=model, tokenizer=text_tokenizer, batch_size=3, device="cpu", dtype="float32")


def test_loglikelihood_equals_direct_computation(lm: MambaEvalLM) -> None:
    pairs = [
        ("the cat sat on the", " mat."),
        ("a dog", " ran quickly under the big red tree and then sat."),
        ("", "the small dog"),  # empty context: conditioned on EOS
        ("blue", " tree"),
        ("the cat sat on the mat and then the dog ran", " on"),
    ]
    results = lm.loglikelihood(instances("loglikelihood", pairs), disable_tqdm=True)
    eos = lm.eot_token_id
    for (context, continuation), (score, greedy) in zip(pairs, results):
        context_ids = lm.tok_encode(context) if context else [eos]
        whole = lm.tok_encode(context + continuation)
        continuation_ids = whole[len(context_ids) :] if context else lm.tok_encode(continuation)
        expected, expected_greedy = direct_logprob(lm.model, context_ids, continuation_ids)
        assert score == pytest.approx(expected, rel=1e-5, abs=1e-5)
        assert greedy == expected_greedy


def test_loglikelihood_rolling_equals_direct_computation(lm: MambaEvalLM) -> None:
    documents = [
        "the cat sat on the mat.",
        "a big blue tree and then a small red dog ran slowly under the mat.",
    ]
    eos = lm.eot_token_id
    # a context longer than every document: one pass conditioned on EOS
    scores = lm.loglikelihood_rolling(instances("loglikelihood_rolling", [(d,) for d in documents]), True)
    for document, score in zip(documents, scores):
        tokens = lm.tok_encode(document)
        assert score == pytest.approx(direct_logprob(lm.model, [eos], tokens)[0], rel=1e-5)
    # a short max_length: lm-eval's rolling windows, each scored on its own
    lm._max_length = 6
    assert len(lm.tok_encode(documents[1])) > 2 * 6  # several windows
    scores = lm.loglikelihood_rolling(instances("loglikelihood_rolling", [(d,) for d in documents]), True)
    for document, score in zip(documents, scores):
        expected = 0.0
        for window_input, predicted in get_rolling_token_windows(lm.tok_encode(document), eos, 6, 1):
            context = window_input[: len(window_input) - len(predicted) + 1]
            expected += direct_logprob(lm.model, context, predicted)[0]
        assert score == pytest.approx(expected, rel=1e-5)


def test_generate_until_matches_greedy_decoding_and_batching(lm: MambaEvalLM) -> None:
    prompts = ["the cat", "a big blue tree and then", "dog", "the small red dog ran"]
    requests = instances("generate_until", [(p, {"until": [], "max_gen_toks": 6}) for p in prompts])
    batched = lm.generate_until(requests, disable_tqdm=True)
    for prompt, text in zip(prompts, batched):
        ids = torch.tensor([lm.tok_encode(prompt)])
        greedy = lm.model.generate(ids, max_new_tokens=6, top_k=1, eos_token_id=lm.eot_token_id)[
            0, ids.shape[1] :
        ]
        greedy = [t for t in greedy.tolist() if t != lm.eot_token_id]
        assert text == lm.tok_decode(greedy)
    lm._batch_size = 1
    assert lm.generate_until(requests, disable_tqdm=True) == batched
    # an empty context starts from EOS
    [from_eos] = lm.generate_until(
        instances("generate_until", [("", {"until": [], "max_gen_toks": 3})]), True
    )
    eos = lm.eot_token_id
    greedy = lm.model.generate(torch.tensor([[eos]]), max_new_tokens=3, top_k=1, eos_token_id=eos)[
        0, 1:
    ].tolist()
    assert from_eos == lm.tok_decode(greedy[: greedy.index(eos)] if eos in greedy else greedy)


def test_generate_until_stops_at_its_stop_string(lm: MambaEvalLM) -> None:
    prompt = "the cat sat on"
    free = lm.generate_until(
        instances("generate_until", [(prompt, {"until": [], "max_gen_toks": 24})]), True
    )[0]
    assert len(free) >= 6
    stop = free[3:5]  # a string the greedy continuation is known to produce
    calls = []
    hook = lm.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        text = lm.generate_until(
            instances("generate_until", [(prompt, {"until": [stop], "max_gen_toks": 24})]), True
        )[0]
    finally:
        hook.remove()
    assert text == free[: free.index(stop)]
    assert stop not in text
    assert len(calls) < 24  # decoding stopped at the stop string, not at max_gen_toks


def test_bad_arguments_name_the_cause(text_tokenizer) -> None:
    model = tiny_lm("mamba", text_tokenizer.vocab_size)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        MambaEvalLM(model=model, tokenizer=text_tokenizer, batch_size="many")
    with pytest.raises(ValueError, match="needs tokenizer="):
        MambaEvalLM(model=model)
    with pytest.raises(ValueError, match="needs model_args checkpoint="):
        MambaEvalLM()
    with pytest.raises(ValueError, match="unknown dtype"):
        MambaEvalLM(model=model, tokenizer=text_tokenizer, dtype="float8")
    lm = MambaEvalLM(model=model, tokenizer=text_tokenizer, device="cpu")
    with pytest.raises(ValueError, match="does not support generation kwargs"):
        lm.generate_until(instances("generate_until", [("a", {"until": ["."], "num_beams": 4})]), True)
