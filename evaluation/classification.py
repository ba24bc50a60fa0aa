"""Accuracy of a sequence classifier (Long Range Arena) over classification batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .perplexity import autocast_context, model_device


@dataclass
class AccuracyResult:
    correct: int
    examples: int

    @property
    def accuracy(self) -> float:
        """Accuracy in percent."""
        return 100.0 * self.correct / self.examples if self.examples else float("nan")


def classifier_logits(
    model: torch.nn.Module, input_ids: torch.Tensor, lengths: torch.Tensor | None
) -> torch.Tensor:
    """(batch, num_classes) logits of ``model(input_ids, lengths=lengths)`` (a tensor, or an output
    object with ``.logits``)."""
    output = model(input_ids, lengths=lengths) if lengths is not None else model(input_ids)
    logits = output.logits if hasattr(output, "logits") else output
    if logits.dim() != 2:
        raise ValueError(
            f"{type(model).__name__} returned logits of shape {tuple(logits.shape)}; a sequence classifier "
            "returns (batch, num_classes)"
        )
    return logits


@torch.no_grad()
def classification_accuracy(
    model: torch.nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    max_batches: int | None = None,
    dtype: torch.dtype | None = None,
) -> AccuracyResult:
    """Share of examples whose arg-max logit is the label.

    Args:
        batches: ``{"input_ids": (B, L) or (B, 2, L) int64, "labels": (B,) int64, "lengths": (B,) int64}``.
        max_batches: stop after this many batches (None = all).
        dtype: autocast dtype (None/fp32 = none).
    """
    model.eval()
    device = model_device(model)
    correct = examples = 0
    for batch in itertools.islice(batches, max_batches):
        if "labels" not in batch or batch["labels"].dim() != 1:
            raise ValueError(
                "classification batches need labels of shape (batch,): is this an LRA data config?"
            )
        lengths = batch.get("lengths")
        with autocast_context(device, dtype):
            logits = classifier_logits(
                model, batch["input_ids"].to(device), lengths.to(device) if lengths is not None else None
            )
        labels = batch["labels"].to(device)
        correct += int((logits.argmax(-1) == labels).sum())
        examples += labels.numel()
    if examples == 0:
        raise ValueError("the data gave no example to classify (empty split)")
    return AccuracyResult(correct, examples)
