"""Fixed-length blocks of a token stream and the language-model batches made from them.

Block ``i`` holds tokens ``[i * seqlen, i * seqlen + seqlen + 1)``: consecutive blocks share one
token, so every token of the stream (but the first) is a prediction target exactly once.
"""

from __future__ import annotations

import numpy as np
import torch
from mamba_lm.data.lm.shards import TokenStream


class BlockDataset:
    """The blocks of ``seqlen + 1`` tokens of one split, optionally only the first ``max_blocks``."""

    def __init__(self, stream: TokenStream, seqlen: int, max_blocks: int | None = None):
        self.stream, self.seqlen = stream, seqlen
        available = max(0, (len(stream) - 1) // seqlen)
        self.num_blocks = available if max_blocks is None else min(available, max_blocks)

    def blocks(self, indices: np.ndarray) -> np.ndarray:
        """Blocks ``indices`` as an array of shape (len(indices), seqlen + 1), the stream's dtype."""
        if len(indices) and (min(indices) < 0 or max(indices) >= self.num_blocks):
            raise IndexError(f"block index outside [0, {self.num_blocks})")
        return np.stack(
            [self.stream.read(i * self.seqlen, i * self.seqlen + self.seqlen + 1) for i in indices]
        )


def document_index(tokens: np.ndarray, eos_token_id: int) -> np.ndarray:
    """``seq_idx`` for packed documents: int32, same shape as ``tokens`` (B, L).

    Position ``t`` gets the number of EOS tokens before it in its row, so each document (its
    EOS included) has one index and the index is non-decreasing along the row.
    """
    ends = tokens == eos_token_id
    seq_idx = np.zeros(tokens.shape, dtype=np.int32)
    np.cumsum(ends[:, :-1], axis=1, out=seq_idx[:, 1:])
    return seq_idx


def lm_batch(
    blocks: np.ndarray, eos_token_id: int | None = None, packing: bool = False
) -> dict[str, torch.Tensor]:
    """A language-model batch from blocks (B, L + 1).

    Returns ``input_ids`` int64 (B, L), ``labels`` int64 (B, L) = the inputs shifted by one,
    and with ``packing`` ``seq_idx`` int32 (B, L) from :func:`document_index`.
    """
    tokens = blocks.astype(np.int64)
    batch = {
        "input_ids": torch.from_numpy(np.ascontiguousarray(tokens[:, :-1])),
        "labels": torch.from_numpy(np.ascontiguousarray(tokens[:, 1:])),
    }
    if packing:
        if eos_token_id is None:
            raise ValueError("document-aware packing needs an eos_token_id")
        batch["seq_idx"] = torch.from_numpy(document_index(tokens[:, :-1], eos_token_id))
    return batch
