"""Predictions at chosen positions of very long sequences, in parallel or recurrent form.

- ``parallel``: one forward pass over the whole sequence (fast; memory grows with the length).
- ``recurrent``: the first ``prefill`` tokens in parallel form (filling the inference cache), then one
  recurrent step per token. For Mamba and S4D the cache is a fixed-size state, so memory stays
  constant in the length: this is how a 2-layer model is tested at 2^20 tokens.
Both return the arg-max prediction at every position whose label is not -100.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from mamba_lm.generation import InferenceParams

from .perplexity import IGNORE_INDEX, autocast_context, model_device

MODES = ("parallel", "recurrent")


@torch.inference_mode()
def predictions_at_labels(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    mode: str = "recurrent",
    prefill: int = 1024,
    vocab_size: int | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Arg-max next-token predictions where ``labels != -100``.

    Args:
        input_ids, labels: (batch, seqlen) int64 (labels[b, t] is the target after input_ids[b, :t+1]).
        mode: "parallel" or "recurrent" (see the module docstring).
        prefill: recurrent mode: tokens read in parallel form before stepping (memory ~ prefill).
        vocab_size: predict only ids below it (the task's vocabulary; padded rows excluded).
    Returns:
        (number of labelled positions,) int64 predictions, in row-major order of the labelled positions.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if input_ids.shape != labels.shape or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids and labels must both be (batch, seqlen), got {input_ids.shape}, {labels.shape}"
        )
    device = model_device(model)
    input_ids, labels = input_ids.to(device), labels.to(device)
    wanted = labels != IGNORE_INDEX  # (batch, seqlen)
    if mode == "parallel":
        with autocast_context(device, dtype):
            logits = model(input_ids).logits
        return _argmax(logits[wanted], vocab_size)

    with flush_denormals(device):
        return _recurrent_predictions(model, input_ids, labels, wanted, prefill, vocab_size, dtype)


def _recurrent_predictions(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    wanted: torch.Tensor,
    prefill: int,
    vocab_size: int | None,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    device = input_ids.device
    batch, seqlen = input_ids.shape
    prefill = max(1, min(prefill, seqlen))
    params = InferenceParams(max_seqlen=seqlen, max_batch_size=batch)
    predictions = torch.zeros_like(labels)
    with autocast_context(device, dtype):
        logits = model(input_ids[:, :prefill], inference_params=params).logits  # (batch, prefill, vocab)
    params.seqlen_offset = prefill
    predictions[:, :prefill] = _argmax(logits, vocab_size)
    # Only the columns that hold a label need their prediction kept; every column must be stepped.
    labelled_columns = wanted.any(dim=0).tolist()
    for t in range(prefill, seqlen):
        with autocast_context(device, dtype):
            logits = model(input_ids[:, t : t + 1], inference_params=params, num_last_tokens=1).logits
        params.seqlen_offset += 1
        if labelled_columns[t]:
            predictions[:, t] = _argmax(logits[:, -1], vocab_size)
    return predictions[wanted]


@contextlib.contextmanager
def flush_denormals(device: torch.device) -> Iterator[None]:
    """On a CPU, treat denormal floats as zero while stepping: a decaying SSM state drifts into the
    denormal range over many steps, where CPU arithmetic is ~20x slower. Reset afterwards."""
    if device.type != "cpu" or not torch.set_flush_denormal(True):
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _argmax(logits: torch.Tensor, vocab_size: int | None) -> torch.Tensor:
    if vocab_size is not None:
        logits = logits[..., :vocab_size]
    return logits.float().argmax(-1)
