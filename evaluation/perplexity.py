"""Perplexity of a causal LM: non-overlapping blocks or a sliding window with a stride.

Two modes over the same data:

- **blocks** (``stride=0``): score each batch of the data loader exactly as the trainer's
  validation does (``{"input_ids", "labels"}``, labels ``-100`` ignored, ``seq_idx`` passed on),
  so the mean loss equals the trainer's logged ``val_loss`` on the same split.
- **sliding** (``stride=S``): the blocks are joined back into one token stream, read by windows of
  ``context`` tokens that advance by ``S``; each window scores only the targets not scored before,
  so every token is predicted once, with at least ``context - S`` tokens of context after the first
  window (the usual "strided perplexity").

perplexity = exp(sum of token negative log-likelihoods / number of scored tokens).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


@dataclass
class PerplexityResult:
    """Summed negative log-likelihood (nats) over ``tokens`` scored targets, and the time it took."""

    nll_sum: float
    tokens: int
    seconds: float

    @property
    def mean_nll(self) -> float:
        """Mean loss per token (nats) = the trainer's cross-entropy loss on the same targets."""
        return self.nll_sum / self.tokens if self.tokens else math.nan

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean_nll) if self.tokens else math.nan

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict[str, float | int]:
        return {
            "nll_sum": self.nll_sum,
            "tokens": self.tokens,
            "loss": self.mean_nll,
            "perplexity": self.perplexity,
            "seconds": self.seconds,
            "tokens_per_s": self.tokens_per_s,
        }


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for a half dtype, or a no-op for fp32/None (weights stay as they are)."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@torch.no_grad()
def token_nll(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    seq_idx: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[float, int]:
    """Summed next-token NLL over the labels that are not ``-100``, and how many there are.

    Args:
        model: a causal LM whose ``forward(input_ids[, seq_idx=...])`` returns an object with ``.logits``
            (batch, seqlen, padded_vocab); the loss is taken over all logits, as in training.
        input_ids, labels: (batch, seqlen) int64; ``labels[b, t]`` is the target after ``input_ids[b, :t+1]``.
        seq_idx: optional (batch, seqlen) int32 document index (packed documents).
        dtype: autocast dtype (None/fp32 = none).
    Returns:
        (nll_sum in nats as a Python float accumulated in fp32, number of scored targets).
    """
    device = model_device(model)
    input_ids, labels = input_ids.to(device), labels.to(device)
    kwargs = {} if seq_idx is None else {"seq_idx": seq_idx.to(device)}
    with autocast_context(device, dtype):
        logits = model(input_ids, **kwargs).logits
    nll = F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return float(nll), int((labels != IGNORE_INDEX).sum())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def perplexity_over_batches(
    model: torch.nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    max_tokens: int | None = None,
    dtype: torch.dtype | None = None,
) -> PerplexityResult:
    """Blocks mode: score every LM batch ``{"input_ids", "labels"[, "seq_idx"]}`` as it comes.

    Stops after the batch that brings the count of scored targets to ``max_tokens`` (None = all).
    Raises ``ValueError`` when the batches hold no scored target at all.
    """
    model.eval()
    device = model_device(model)
    nll_sum, tokens = 0.0, 0
    start = time.perf_counter()
    for batch in batches:
        _check_lm_batch(batch)
        batch_nll, batch_tokens = token_nll(
            model, batch["input_ids"], batch["labels"], batch.get("seq_idx"), dtype
        )
        nll_sum += batch_nll
        tokens += batch_tokens
        if max_tokens is not None and tokens >= max_tokens:
            break
    _synchronize(device)
    if tokens == 0:
        raise ValueError("the data gave no token to score (empty split, or every label is -100)")
    return PerplexityResult(nll_sum, tokens, time.perf_counter() - start)


def _check_lm_batch(batch: dict[str, torch.Tensor]) -> None:
    if "input_ids" not in batch or "labels" not in batch:
        raise ValueError(f"perplexity needs LM batches with input_ids and labels, got keys {sorted(batch)}")
    if batch["labels"].shape != batch["input_ids"].shape:
        raise ValueError(
            "perplexity needs per-token labels shaped like input_ids (a language-model data config), got "
            f"input_ids {tuple(batch['input_ids'].shape)} and labels {tuple(batch['labels'].shape)}"
        )


def token_stream_from_batches(
    batches: Iterable[dict[str, torch.Tensor]], max_tokens: int | None = None
) -> torch.Tensor:
    """Join LM blocks back into one 1-D int64 token stream: each row contributes its inputs plus its
    last target (row = block[:-1], labels = block[1:]). Stops once the stream has ``max_tokens + 1``
    tokens (None = all)."""
    pieces: list[torch.Tensor] = []
    length = 0
    for batch in batches:
        _check_lm_batch(batch)
        for inputs, labels in zip(batch["input_ids"], batch["labels"]):
            row = inputs if labels[-1] == IGNORE_INDEX else torch.cat([inputs, labels[-1:]])
            pieces.append(row.to("cpu", torch.long))
            length += row.numel()
        if max_tokens is not None and length > max_tokens:
            break
    if not pieces:
        raise ValueError("the data gave no block to read a token stream from (empty split)")
    stream = torch.cat(pieces)
    return stream if max_tokens is None else stream[: max_tokens + 1]


@dataclass(frozen=True)
class Window:
    """Inputs ``stream[begin:end]``, targets ``stream[begin+1:end+1]``; scores targets from index
    ``score_from`` within the window (earlier ones were scored by a previous window)."""

    begin: int
    end: int
    score_from: int


def sliding_windows(num_tokens: int, context: int, stride: int) -> Iterator[Window]:
    """Windows over a stream of ``num_tokens`` tokens so that each of the ``num_tokens - 1`` targets is
    scored exactly once. ``stride == context`` gives disjoint windows; a smaller stride gives every
    target after the first window at least ``context - stride`` tokens of context."""
    if context < 1 or not 1 <= stride <= context:
        raise ValueError(
            f"need context >= 1 and 1 <= stride <= context, got context={context}, stride={stride}"
        )
    scored_until = 0  # targets stream[1 : scored_until + 1] are done
    while scored_until < num_tokens - 1:
        end = min(num_tokens - 1, (scored_until + stride) if scored_until else context)
        begin = max(0, end - context)
        yield Window(begin, end, scored_until - begin)
        scored_until = end


def perplexity_sliding(
    model: torch.nn.Module,
    stream: torch.Tensor,
    context: int,
    stride: int,
    batch_size: int = 1,
    dtype: torch.dtype | None = None,
) -> PerplexityResult:
    """Sliding mode over a 1-D int64 token stream (see ``sliding_windows``), ``batch_size`` windows
    of equal length at a time."""
    if stream.dim() != 1 or stream.numel() < 2:
        raise ValueError(f"need a 1-D token stream of at least 2 tokens, got shape {tuple(stream.shape)}")
    model.eval()
    device = model_device(model)
    nll_sum, tokens = 0.0, 0
    start = time.perf_counter()
    pending: list[Window] = []
    for window in sliding_windows(stream.numel(), context, stride):
        if pending and (
            len(pending) == batch_size or window.end - window.begin != pending[0].end - pending[0].begin
        ):
            batch_nll, batch_tokens = _score_windows(model, stream, pending, dtype)
            nll_sum, tokens = nll_sum + batch_nll, tokens + batch_tokens
            pending = []
        pending.append(window)
    batch_nll, batch_tokens = _score_windows(model, stream, pending, dtype)
    _synchronize(device)
    return PerplexityResult(nll_sum + batch_nll, tokens + batch_tokens, time.perf_counter() - start)


def _score_windows(
    model: torch.nn.Module, stream: torch.Tensor, windows: list[Window], dtype: torch.dtype | None
) -> tuple[float, int]:
    inputs = torch.stack([stream[w.begin : w.end] for w in windows])
    labels = torch.stack([stream[w.begin + 1 : w.end + 1] for w in windows]).clone()
    for row, window in enumerate(windows):
        labels[row, : window.score_from] = IGNORE_INDEX
    return token_nll(model, inputs, labels, dtype=dtype)
