"""Synthetic tasks of the Mamba paper: accuracy per test length (induction heads) or at the task's
length (selective copying), from a run's own data config.

Accuracy counts the labelled positions (labels != -100) whose arg-max prediction over the task's
vocabulary is right: for induction heads the one recalled token per sequence, for selective
copying the data tokens to reproduce. The sequence accuracy (every labelled token right) is kept too.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import torch

from .recurrent import predictions_at_labels

SYNTHETIC_KINDS = ("induction_heads", "selective_copying")


@dataclass
class LengthResult:
    length: int
    correct: int
    labelled: int
    sequences_correct: int
    sequences: int
    mode: str
    seconds: float

    @property
    def accuracy(self) -> float:
        """Token accuracy over the labelled positions, in percent."""
        return 100.0 * self.correct / self.labelled if self.labelled else float("nan")

    @property
    def sequence_accuracy(self) -> float:
        return 100.0 * self.sequences_correct / self.sequences if self.sequences else float("nan")


def evaluate_length(
    model: torch.nn.Module,
    batches,
    length: int,
    vocab_size: int,
    mode: str,
    prefill: int,
    max_examples: int | None = None,
    dtype: torch.dtype | None = None,
) -> LengthResult:
    """Accuracy over LM batches ``{"input_ids", "labels"}`` of one sequence length (at most
    ``max_examples`` sequences), predicted in ``mode`` ("parallel" or "recurrent")."""
    correct = labelled = sequences_correct = sequences = 0
    start = time.perf_counter()
    for batch in batches:
        input_ids, labels = batch["input_ids"], batch["labels"]
        if max_examples is not None:
            input_ids, labels = input_ids[: max_examples - sequences], labels[: max_examples - sequences]
        if input_ids.shape[1] != length:
            raise ValueError(
                f"asked for test length {length}, the data gave sequences of {input_ids.shape[1]}"
            )
        predictions = predictions_at_labels(model, input_ids, labels, mode, prefill, vocab_size, dtype).cpu()
        wanted = labels != -100
        hits = torch.zeros_like(labels, dtype=torch.bool)
        hits[wanted] = predictions == labels[wanted]
        correct += int(hits.sum())
        labelled += int(wanted.sum())
        sequences_correct += int((hits | ~wanted).all(dim=1).sum())
        sequences += labels.shape[0]
        if max_examples is not None and sequences >= max_examples:
            break
    if sequences == 0:
        raise ValueError(f"the data gave no sequence of length {length}")
    return LengthResult(
        length, correct, labelled, sequences_correct, sequences, mode, time.perf_counter() - start
    )


def choose_mode(mode: str, length: int, parallel_max_length: int) -> str:
    """``auto``: parallel form up to ``parallel_max_length`` tokens, recurrent (constant memory) beyond."""
    if mode == "auto":
        return "parallel" if length <= parallel_max_length else "recurrent"
    return mode


def parallel_batch(batch_size: int, length: int, parallel_tokens: int | None) -> int:
    """Sequences per parallel forward pass: ``batch_size``, fewer when ``parallel_tokens`` caps the tokens of
    one pass (at least one sequence), so long lengths run in the parallel form in batch chunks."""
    if parallel_tokens is None:
        return batch_size
    return max(1, min(batch_size, parallel_tokens // length))


def length_generalization(
    model: torch.nn.Module,
    datamodule,
    lengths: list[int],
    batch_size: int,
    max_examples: int | None,
    mode: str = "auto",
    parallel_max_length: int = 1 << 14,
    prefill: int = 1024,
    dtype: torch.dtype | None = None,
    on_result=None,
    recurrent_batch_size: int | None = None,
    parallel_tokens: int | None = None,
) -> list[LengthResult]:
    """Accuracy at each test length, from ``datamodule.val_loader(batch, seqlen=L)``.

    ``batch`` is ``batch_size`` in parallel form, at most ``parallel_tokens // L`` sequences (at least
    one) when ``parallel_tokens`` is given, and ``recurrent_batch_size`` (default: ``batch_size``) in
    recurrent form, where one stepping loop costs nearly the same for 1 or 256 sequences.
    ``on_result(result)`` is called after each length (progress printing).
    """
    results = []
    for length in lengths:
        length_mode = choose_mode(mode, length, parallel_max_length)
        if length_mode == "recurrent":
            batch = recurrent_batch_size or batch_size
        else:
            batch = parallel_batch(batch_size, length, parallel_tokens)
        loader = datamodule.val_loader(batch, seqlen=length)
        if max_examples is not None:
            loader = itertools.islice(loader, -(-max_examples // batch))
        result = evaluate_length(
            model, loader, length, datamodule.vocab_size, length_mode, prefill, max_examples, dtype
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
