"""Cross-entropy as sums (loss, labelled count, argmax hits): batches and processes combine exactly."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
"""Label of a position (or example) that takes no loss."""


class LossSums(NamedTuple):
    """Sums over one batch."""

    loss_sum: torch.Tensor
    """Summed cross-entropy (fp32 scalar) over labelled positions (LM) or examples (classification)."""
    count: torch.Tensor
    """Number of labelled positions or examples (int64 scalar)."""
    correct: torch.Tensor
    """Correct argmax predictions among them (int64 scalar; 0 unless counted)."""


def cross_entropy_sums(logits: torch.Tensor, labels: torch.Tensor, count_correct: bool = False) -> LossSums:
    """Cross-entropy of logits (N, classes) (any float dtype; computed in fp32) against labels (N,) int64,
    IGNORE_INDEX where unlabelled."""
    loss_sum = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
    labelled = labels != IGNORE_INDEX
    correct = (
        ((logits.argmax(dim=-1) == labels) & labelled).sum() if count_correct else labelled.new_zeros(())
    )
    return LossSums(loss_sum, labelled.sum(), correct.long())
