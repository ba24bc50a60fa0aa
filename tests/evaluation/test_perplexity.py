"""Perplexity equals exp(mean token loss) computed by hand, in both modes, on tiny real models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from evaluation_parts import tiny_lm
from mamba_lm.evaluation.perplexity import perplexity_over_batches, perplexity_sliding, token_nll

VOCAB = 50


def hand_nll(model: torch.nn.Module, context: torch.Tensor, target: int) -> float:
    """-log p(target | context) from one unbatched forward pass over the context alone."""
    logits = model(context[None]).logits[0, -1].double()
    return float(-F.log_softmax(logits, dim=-1)[target])


@pytest.mark.parametrize("kind", ["mamba", "transformer"])
def test_blocks_mode_is_exp_of_mean_token_loss(kind: str) -> None:
    model = tiny_lm(kind, VOCAB)
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, VOCAB, (5, 13), generator=generator)
    batches = []
    for rows in (blocks[:3], blocks[3:]):
        labels = rows[:, 1:].clone()
        labels[0, :4] = -100  # ignored targets (e.g. a prompt) must not count
        batches.append({"input_ids": rows[:, :-1], "labels": labels})

    nll, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            for inputs, labels in zip(batch["input_ids"], batch["labels"]):
                for t, target in enumerate(labels.tolist()):
                    if target != -100:
                        nll += hand_nll(model, inputs[: t + 1], target)
                        count += 1

    result = perplexity_over_batches(model, batches)
    assert result.tokens == count == 5 * 12 - 2 * 4
    assert result.mean_nll == pytest.approx(nll / count, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert result.tokens_per_s > 0
    assert result.to_dict()["perplexity"] == result.perplexity


@pytest.mark.parametrize("kind", ["mamba", "s4d"])
def test_sliding_window_with_stride_one_gives_every_token_full_context(kind: str) -> None:
    model = tiny_lm(kind, VOCAB)
    stream = torch.randint(0, VOCAB, (23,), generator=torch.Generator().manual_seed(1))
    context = 6
    with torch.no_grad():
        nll = sum(hand_nll(model, stream[max(0, j - context) : j], int(stream[j])) for j in range(1, 23))
    result = perplexity_sliding(model, stream, context=context, stride=1, batch_size=4)
    assert result.tokens == 22
    assert result.nll_sum == pytest.approx(nll, rel=1e-5)


def test_disjoint_windows_equal_the_blocks_they_form() -> None:
    model = tiny_lm("mamba", VOCAB)
    stream = torch.randint(0, VOCAB, (25,), generator=torch.Generator().manual_seed(2))
    sliding = perplexity_sliding(model, stream, context=8, stride=8, batch_size=2)
    nll, count = 0.0, 0
    for begin in range(0, 24, 8):
        window_nll, window_count = token_nll(
            model, stream[None, begin : begin + 8], stream[None, begin + 1 : begin + 9]
        )
        nll, count = nll + window_nll, count + window_count
    assert sliding.tokens == count == 24
    assert sliding.nll_sum == pytest.approx(nll, rel=1e-6)


def test_empty_or_wrong_data_is_refused() -> None:
    model = tiny_lm("mamba", VOCAB)
    with pytest.raises(ValueError, match="no token to score"):
        perplexity_over_batches(model, [])
    classification = {
        "input_ids": torch.zeros(2, 5, dtype=torch.long),
        "labels": torch.zeros(2, dtype=torch.long),
    }
    with pytest.raises(ValueError, match="language-model data config"):
        perplexity_over_batches(model, [classification])
