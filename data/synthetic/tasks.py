"""The synthetic tasks of the Mamba paper (Sec. 4.1, App. E.1), one example at a time.

Each function returns ``(input_ids, labels)``, int64 arrays of shape (seqlen,), in the
language-model batch convention of :mod:`data.datamodule`: ``labels[t]`` is the target of the
prediction made at position ``t``, and -100 wherever nothing is to be predicted.

- Selective Copying: ``num_data_tokens`` data tokens (ids 1..vocab-2) at random, sorted
  positions among noise tokens (id 0) in the first ``seqlen - num_data_tokens`` positions,
  then one marker (id vocab-1) per data token; at the markers the model must output the data
  tokens in order. (The copying task with variable spacing, as in S4's ``copying`` loader.)
- Induction Heads: ordinary tokens (ids 0..vocab-2) at random, with the trigger (id vocab-1)
  once at a random position (or at a fixed index, ``trigger_position``) followed by the token to
  recall, and again at the end; at the last position the model must output the token that
  followed the first trigger.
"""

from __future__ import annotations

import numpy as np

IGNORE = -100


def selective_copying_example(
    rng: np.random.Generator, seqlen: int, vocab_size: int = 16, num_data_tokens: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """One Selective Copying sequence: (input_ids, labels), int64 (seqlen,)."""
    region = seqlen - num_data_tokens
    if region < num_data_tokens or vocab_size < 3:
        raise ValueError(f"seqlen {seqlen} / vocab {vocab_size} too small for {num_data_tokens} data tokens")
    data = rng.integers(1, vocab_size - 1, size=num_data_tokens)
    positions = np.sort(rng.choice(region, size=num_data_tokens, replace=False))
    input_ids = np.zeros(seqlen, dtype=np.int64)
    input_ids[positions] = data
    input_ids[region:] = vocab_size - 1
    labels = np.full(seqlen, IGNORE, dtype=np.int64)
    labels[region:] = data
    return input_ids, labels


def induction_heads_example(
    rng: np.random.Generator, seqlen: int, vocab_size: int = 16, trigger_position: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One Induction Heads sequence: (input_ids, labels), int64 (seqlen,); one labelled position.

    The first trigger sits at a uniformly random index in [0, seqlen - 3], or at ``trigger_position``."""
    if seqlen < 4 or vocab_size < 3:
        raise ValueError(f"induction heads needs seqlen >= 4 and vocab_size >= 3, got {seqlen}, {vocab_size}")
    if trigger_position is not None and not 0 <= trigger_position <= seqlen - 3:
        raise ValueError(f"trigger_position {trigger_position} is outside [0, seqlen - 3 = {seqlen - 3}]")
    trigger = vocab_size - 1
    input_ids = rng.integers(0, trigger, size=seqlen, dtype=np.int64)
    # The recalled token sits at first + 1 <= seqlen - 2, before the final trigger.
    first = int(rng.integers(0, seqlen - 2)) if trigger_position is None else trigger_position
    input_ids[first] = trigger
    input_ids[-1] = trigger
    labels = np.full(seqlen, IGNORE, dtype=np.int64)
    labels[-1] = input_ids[first + 1]
    return input_ids, labels


def supervise_every_position(input_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Next-token labels at every position (int64, same shape): ``labels[..., t] = input_ids[..., t + 1]``,
    keeping the given label at the last position (the answer to recall)."""
    every = labels.copy()
    every[..., :-1] = input_ids[..., 1:]
    return every
