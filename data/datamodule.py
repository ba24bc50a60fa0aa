"""The one object the trainer and evaluation see: :class:`DataModule`.

``build_datamodule(config, seed, rank, world_size)`` (in ``data/__init__.py``) returns one of its
subclasses. Batches are dicts of CPU tensors:

- task "lm": ``input_ids`` int64 (B, L); ``labels`` int64 (B, L) where ``labels[b, t]`` is the
  target of the logits at position ``t`` (-100 = no loss; for text, the next token), plus
  ``seq_idx`` int32 (B, L) when document-aware packing is on.
- task "classification": ``input_ids`` int64 (B, L) padded with ``pad_token_id`` (or (B, 2, L)
  for two-document tasks, see ``num_documents``), ``labels`` int64 (B,), ``lengths`` int64 (B,)
  (or (B, 2)): the unpadded lengths.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from mamba_lm.data.sampling import Batch, ResumableLoader


class DataModule(ABC):
    """Datasets of one task with their loaders; subclasses fill the attributes and loaders."""

    task: str
    """"lm" or "classification"."""
    vocab_size: int
    """Token ids lie in [0, vocab_size) (the model may pad its embedding beyond)."""
    num_classes: int | None = None
    """Classes of a classification task; None for "lm"."""
    seqlen: int
    """Training sequence length (classification: the maximum, inputs may be shorter)."""
    pad_token_id: int | None = None
    eos_token_id: int | None = None
    tokenizer_file: str | None = None
    """Path of the tokenizer.json used; None for tasks with fixed vocabularies."""
    num_documents: int = 1
    """Documents per classification example (2 for retrieval: input_ids (B, 2, L))."""

    @abstractmethod
    def train_loader(self, batch_size: int) -> ResumableLoader:
        """Infinite iterator of training batches (``batch_size`` per rank) with state_dict() and friends."""

    @abstractmethod
    def val_loader(self, batch_size: int) -> Iterable[Batch]:
        """Finite, deterministic iterable over this rank's share of the validation split (fresh each call)."""

    @property
    def has_test(self) -> bool:
        """Whether :meth:`test_loader` is available."""
        return False

    def test_loader(self, batch_size: int) -> Iterable[Batch]:
        """Finite, deterministic iterable over this rank's share of the test split."""
        raise ValueError(f"data {self.describe().get('name', type(self).__name__)!r} has no test split")

    def describe(self) -> dict[str, Any]:
        """JSON-serializable summary for logs and reports (name, sizes in tokens/examples)."""
        return {
            "task": self.task,
            "vocab_size": self.vocab_size,
            "num_classes": self.num_classes,
            "seqlen": self.seqlen,
        }
