"""Packed documents: where each document starts in a row, and running a causal op per document.

``seq_idx`` (batch, seqlen) gives each position a document number; a new document starts wherever the
value changes along a row (the selective scan's convention).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def check_seq_idx(seq_idx: torch.Tensor, batch: int, seqlen: int) -> None:
    """Raise ValueError unless seq_idx is an integer tensor of shape (batch, seqlen)."""
    if not isinstance(seq_idx, torch.Tensor) or tuple(seq_idx.shape) != (batch, seqlen):
        raise ValueError(
            f"seq_idx must be a (batch, seqlen) = {(batch, seqlen)} tensor, "
            f"got {getattr(seq_idx, 'shape', seq_idx)}"
        )
    if seq_idx.dtype.is_floating_point or seq_idx.dtype == torch.bool:
        raise ValueError(f"seq_idx must be an integer tensor, got {seq_idx.dtype}")


def document_positions(seq_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position: the document's number within its row and the position inside that document.

    seq_idx: (batch, seqlen) int. Returns (doc_in_row, pos_in_doc), both (batch, seqlen) int64:
    doc_in_row counts documents from 0 in every row; pos_in_doc restarts at 0 where a document starts.
    """
    batch, seqlen = seq_idx.shape
    starts = torch.ones(batch, seqlen, dtype=torch.bool, device=seq_idx.device)
    starts[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
    t = torch.arange(seqlen, device=seq_idx.device).expand(batch, seqlen)
    start_position = torch.where(starts, t, 0).cummax(dim=1).values
    doc_in_row = starts.long().cumsum(dim=1) - 1
    return doc_in_row, t - start_position


def same_document_mask(seq_idx: torch.Tensor) -> torch.Tensor:
    """(batch, seqlen) -> (batch, seqlen, seqlen) bool: query i and key j lie in the same document."""
    doc_in_row, _ = document_positions(seq_idx)
    return doc_in_row[:, :, None] == doc_in_row[:, None, :]


def run_per_document(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seq_idx: torch.Tensor
) -> torch.Tensor:
    """Apply a causal sequence op to every packed document on its own.

    The documents are unpacked into a zero-padded (n_docs, longest_doc, d) batch, ``fn`` runs once on it,
    and the outputs are packed back. Exact for any causal ``fn`` (right padding cannot reach earlier
    positions). Costs n_docs * longest_doc positions of work.

    x: (batch, seqlen, d); seq_idx: (batch, seqlen) int; fn: (n, len, d) -> (n, len, d_out).
    Returns (batch, seqlen, d_out).
    """
    batch, seqlen, d = x.shape
    doc_in_row, pos_in_doc = document_positions(seq_idx)
    docs_per_row = doc_in_row[:, -1] + 1
    first_doc_of_row = docs_per_row.cumsum(0) - docs_per_row
    doc = (doc_in_row + first_doc_of_row[:, None]).flatten()
    pos = pos_in_doc.flatten()
    n_docs, longest = int(docs_per_row.sum()), int(pos.max()) + 1
    unpacked = x.new_zeros(n_docs, longest, d)
    unpacked = unpacked.index_put((doc, pos), x.reshape(batch * seqlen, d))
    out = fn(unpacked)
    return out[doc, pos].view(batch, seqlen, out.shape[-1])
