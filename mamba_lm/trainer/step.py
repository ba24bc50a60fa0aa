"""One training step (forward, loss, backward over micro-batches, clip, optimizer step) and validation.

``TrainStep`` is the code path of the trainer's loop and of ``benchmarks/train_throughput.py``.
Models are used only through ``forward``: a language model is called as
``model(input_ids, seq_idx=..., labels=..., count_correct=...)`` and returns the loss sums itself
(``LossSums``: its fused head never holds the whole logits); a classifier is called as
``model(input_ids, lengths=...)`` and returns logits (B, C) (or an object with ``.logits``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..models.loss import LossSums, cross_entropy_sums

TASKS = ("lm", "classification")


def forward_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], task: str, count_correct: bool = False
) -> LossSums:
    """Cross-entropy of the model on one batch (and, with ``count_correct``, argmax hits).

    LM batch: ``input_ids`` (B, L) int64, ``labels`` (B, L) int64 with -100 where ignored,
    optional ``seq_idx`` (B, L) int32 (packed documents). Classification batch: ``input_ids``,
    ``labels`` (B,) int64, optional ``lengths`` (B,).
    """
    if task == "lm":
        extra = {"seq_idx": batch["seq_idx"]} if batch.get("seq_idx") is not None else {}
        sums = model(batch["input_ids"], labels=batch["labels"], count_correct=count_correct, **extra)
        return LossSums(*sums)
    if task == "classification":
        extra = {"lengths": batch["lengths"]} if batch.get("lengths") is not None else {}
        output = model(batch["input_ids"], **extra)
        logits = output.logits if hasattr(output, "logits") else output  # (B, C)
        return cross_entropy_sums(logits, batch["labels"], count_correct)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


@dataclass
class StepResult:
    loss: float
    """Mean loss over the step's micro-batches and all processes."""
    grad_norm: float
    """Global gradient norm before clipping."""
    skipped: bool
    """The update was not applied (non-finite loss or gradients, or the fp16 scaler's overflow)."""
    nonfinite: bool
    """The loss was NaN/inf, or the gradient norm was (outside fp16, where the scaler expects overflows)."""
    stop_requested: bool
    """Some process asked to stop (SIGTERM); all processes see the same value."""
    tokens: int
    """Input positions processed in this step by all processes."""


class TrainStep:
    """forward + loss + backward for each micro-batch, gradient clipping, then the optimizer step.

    ``model`` and ``optimizer`` are the objects ``accelerator.prepare`` returned (autocast, DDP/FSDP
    and the fp16 loss scaler come from there). Gradients of all but the last micro-batch are
    accumulated without DDP's all-reduce. A step whose loss or gradient norm is not finite is
    skipped (no update), on every process alike.
    """

    def __init__(self, accelerator, model: nn.Module, optimizer, task: str = "lm", grad_clip: float = 1.0):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.accelerator = accelerator
        self.model = model
        self.optimizer = optimizer
        self.task = task
        self.max_norm = grad_clip if grad_clip > 0 else math.inf

    def __call__(
        self, micro_batches: Sequence[dict[str, torch.Tensor]], stop_requested: bool = False
    ) -> StepResult:
        accelerator, count = self.accelerator, len(micro_batches)
        loss_total = torch.zeros((), device=accelerator.device)
        tokens = 0
        for index, batch in enumerate(micro_batches):
            batch = to_device(batch, accelerator.device)
            last = index == count - 1
            with nullcontext() if last else accelerator.no_sync(self.model):
                terms = forward_loss(self.model, batch, self.task)
                loss = terms.loss_sum / terms.count
                accelerator.backward(loss / count)
            loss_total += loss.detach()
            tokens += batch["input_ids"].numel()
        grad_norm = float(accelerator.clip_grad_norm_(self.model.parameters(), self.max_norm))
        shared = torch.stack(
            [loss_total / count, torch.tensor(float(stop_requested), device=loss_total.device)]
        )
        mean_loss, stop = accelerator.reduce(shared, reduction="mean").tolist()
        finite_grads = math.isfinite(grad_norm)
        if accelerator.scaler is not None:  # fp16: the scaler skips steps with inf/NaN gradients itself
            nonfinite = not math.isfinite(mean_loss)
            self.optimizer.step()
            skipped = accelerator.optimizer_step_was_skipped or nonfinite or not finite_grads
        else:
            nonfinite = not (math.isfinite(mean_loss) and finite_grads)
            if not nonfinite:
                self.optimizer.step()
            skipped = nonfinite
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(
            mean_loss, grad_norm, skipped, nonfinite, stop > 0, tokens * accelerator.num_processes
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    task: str,
    accelerator,
    max_batches: int | None,
) -> dict[str, float]:
    """Validation loss over up to ``max_batches`` batches per process, exact over tokens and processes.

    Returns ``val_loss`` (mean cross-entropy per labelled position / example), ``val_ppl`` for
    LM, ``val_accuracy`` for classification, and ``val_count``. Processes step in lockstep and stop
    together when any runs out of batches (FSDP needs every process in every forward).
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=accelerator.device)
    iterator = iter(batches)
    done = 0
    while max_batches is None or done < max_batches:
        batch = next(iterator, None)
        if accelerator.num_processes > 1:
            available = torch.tensor(float(batch is not None), device=accelerator.device)
            if accelerator.reduce(available, reduction="sum").item() < accelerator.num_processes:
                break
        elif batch is None:
            break
        terms = forward_loss(model, to_device(batch, accelerator.device), task, count_correct=True)
        sums += torch.stack([terms.loss_sum.double(), terms.count.double(), terms.correct.double()])
        done += 1
    loss_sum, count, correct = accelerator.reduce(sums, reduction="sum").tolist()
    model.train(was_training)
    if count == 0:
        raise ValueError("the validation split gave no labelled positions to evaluate")
    result = {"val_loss": loss_sum / count, "val_count": count}
    if task == "lm":
        result["val_ppl"] = math.exp(min(result["val_loss"], 50.0))
    else:
        result["val_accuracy"] = correct / count
    return result
