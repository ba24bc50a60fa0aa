"""Encoded classification examples on disk: one token file, offsets and labels per split.

``<split>.tokens.bin`` holds every document's ids back to back; ``<split>.offsets.npy`` (int64,
examples * documents + 1) where each document starts; ``<split>.labels.npy`` (int64). Written
inside a folder that :func:`data.cache.build_once` renames into place when complete; the
``.npy`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from mamba_lm.data.cache import atomic_write_json, read_json

META = "meta.json"


class SplitWriter:
    """Appends encoded examples of one split; ``close`` writes offsets and labels."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, documents: int):
        self.folder, self.split, self.dtype, self.documents = folder, split, np.dtype(dtype), documents
        self.handle = open(folder / f"{split}.tokens.bin", "wb")  # noqa: SIM115 (closed by close())
        self.offsets, self.labels, self.position = [0], [], 0

    def add(self, docs: list[np.ndarray], label: int) -> None:
        """Append one example: its documents' ids and its label."""
        if len(docs) != self.documents:
            raise ValueError(
                f"an example of split {self.split!r} has {len(docs)} documents, expected {self.documents}"
            )
        for doc in docs:
            self.handle.write(np.asarray(doc, dtype=self.dtype).tobytes())
            self.position += len(doc)
            self.offsets.append(self.position)
        self.labels.append(int(label))

    def close(self) -> int:
        """Finish the split; returns its number of examples."""
        self.handle.close()
        np.save(self.folder / f"{self.split}.offsets.npy", np.array(self.offsets, dtype=np.int64))
        np.save(self.folder / f"{self.split}.labels.npy", np.array(self.labels, dtype=np.int64))
        return len(self.labels)


def write_split(
    folder: Path,
    split: str,
    examples: Iterable[tuple[list[np.ndarray], int]],
    dtype: np.dtype,
    documents: int,
) -> int:
    """Write all ``examples`` (documents' ids, label) as ``split``; returns the count."""
    writer = SplitWriter(folder, split, dtype, documents)
    for docs, label in examples:
        writer.add(docs, label)
    return writer.close()


def finish_store(folder: Path, meta: dict) -> None:
    """Write the metadata last: a folder with ``meta.json`` is complete."""
    atomic_write_json(folder / META, meta)


class ExampleStore:
    """One split of a written store: ``len``, ``labels`` and ``documents(i)``."""

    def __init__(self, folder: Path, split: str):
        meta = read_json(folder / META)
        self.documents_per_example = meta["documents"]
        self.offsets = np.load(folder / f"{split}.offsets.npy", allow_pickle=False)
        self.labels = np.load(folder / f"{split}.labels.npy", allow_pickle=False)
        tokens = folder / f"{split}.tokens.bin"
        dtype = np.dtype(meta["dtype"])
        if tokens.stat().st_size != self.offsets[-1] * dtype.itemsize:
            raise ValueError(
                f"{tokens} has {tokens.stat().st_size} bytes, not {self.offsets[-1] * dtype.itemsize}"
            )
        self.tokens = np.memmap(tokens, dtype=dtype, mode="r") if self.offsets[-1] else np.zeros(0, dtype)

    def __len__(self) -> int:
        return len(self.labels)

    def documents(self, index: int) -> list[np.ndarray]:
        """The ids of example ``index``'s documents."""
        first = index * self.documents_per_example
        return [
            self.tokens[self.offsets[first + d] : self.offsets[first + d + 1]]
            for d in range(self.documents_per_example)
        ]
