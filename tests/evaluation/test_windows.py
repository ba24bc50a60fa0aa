"""Sliding-window bookkeeping of strided perplexity: every target scored exactly once, with context."""

from __future__ import annotations

import pytest
import torch
from mamba_lm.evaluation.perplexity import sliding_windows, token_stream_from_batches


@pytest.mark.parametrize(
    ("num_tokens", "context", "stride"), [(2, 4, 4), (50, 8, 8), (50, 8, 3), (64, 16, 1), (9, 8, 5)]
)
def test_each_target_is_scored_once_with_enough_context(num_tokens: int, context: int, stride: int) -> None:
    scored: list[int] = []
    for index, window in enumerate(sliding_windows(num_tokens, context, stride)):
        assert 0 < window.end - window.begin <= context
        targets = list(range(window.begin + 1 + window.score_from, window.end + 1))
        if index > 0:
            # every target after the first window sees at least context - stride tokens before it
            assert targets[0] - window.begin >= min(context - stride, targets[0])
            assert window.end - window.begin == min(context, num_tokens - 1)
        scored += targets
    assert scored == list(range(1, num_tokens))


def test_bad_window_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="1 <= stride <= context"):
        list(sliding_windows(10, 4, 5))


def test_stream_rebuilt_from_blocks() -> None:
    stream = torch.arange(20)
    blocks = stream.view(2, 2, 5)  # two batches of two blocks of 5 tokens (seqlen 4)
    batches = [{"input_ids": b[:, :-1], "labels": b[:, 1:]} for b in blocks]
    assert torch.equal(token_stream_from_batches(batches), stream)
    assert torch.equal(token_stream_from_batches(batches, max_tokens=6), stream[:7])
