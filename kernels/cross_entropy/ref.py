"""The reference linear cross-entropy: the whole logits, then F.cross_entropy in fp32."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import check_cross_entropy_args


def linear_cross_entropy_ref(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    chunk_size: int | None = None,
    count_correct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of logits = hidden @ weight.T over labelled positions.

    Args:
        hidden: (..., d).  weight: (vocab, d).  labels: (...) int64, ignore_index where unlabelled.
        chunk_size: ignored (the reference computes all (N, vocab) logits at once).
    Returns:
        (loss_sum fp32 scalar, labelled count int64 scalar, argmax hits int64 scalar (0 unless
        count_correct)).
    """
    check_cross_entropy_args(hidden, weight, labels, chunk_size)
    logits = F.linear(hidden, weight).reshape(-1, weight.shape[0])
    flat_labels = labels.reshape(-1)
    loss_sum = F.cross_entropy(logits.float(), flat_labels, ignore_index=ignore_index, reduction="sum")
    labelled = flat_labels != ignore_index
    if count_correct:
        correct = ((logits.argmax(dim=-1) == flat_labels) & labelled).sum()
    else:
        correct = labelled.new_zeros((), dtype=torch.int64)
    return loss_sum, labelled.sum(), correct
