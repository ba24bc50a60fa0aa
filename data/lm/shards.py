"""Token shards: contiguous uint16/uint32 arrays on disk, described by a JSON manifest.

A split's token stream is the concatenation of its shard files (``train-00000.bin``, ...).
Each shard is written to a temporary name, fsynced and renamed; the manifest, written last and
atomically, lists every shard with its token count and blake2b digest. A reader accepts a
folder only if its manifest is present and every shard has exactly the listed size (and, on
request, digest), so an interrupted write never loads as valid.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from mamba_lm.data.cache import read_json

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ShardError(ValueError):
    """A shard folder is incomplete, damaged or of another format."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


class ShardWriter:
    """Appends token arrays of one split and cuts them into shards of ``shard_tokens`` tokens."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int):
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, np.dtype(dtype), shard_tokens
        self.pending: list[np.ndarray] = []
        self.pending_tokens = 0
        self.shards: list[dict[str, Any]] = []
        self.documents = 0

    def add_document(self, tokens: np.ndarray) -> None:
        """Append one document's tokens (EOS included)."""
        self.pending.append(np.asarray(tokens, dtype=self.dtype))
        self.pending_tokens += len(tokens)
        self.documents += 1
        while self.pending_tokens >= self.shard_tokens:
            stream = np.concatenate(self.pending)
            self._write(stream[: self.shard_tokens])
            rest = stream[self.shard_tokens :]
            self.pending, self.pending_tokens = [rest], len(rest)

    def close(self) -> dict[str, Any]:
        """Write the remaining tokens; return the split's manifest entry."""
        if self.pending_tokens:
            self._write(np.concatenate(self.pending))
        self.pending, self.pending_tokens = [], 0
        return {
            "tokens": sum(shard["tokens"] for shard in self.shards),
            "documents": self.documents,
            "shards": self.shards,
        }

    def _write(self, tokens: np.ndarray) -> None:
        name = f"{self.split}-{len(self.shards):05d}.bin"
        temporary = self.folder / f".{name}.tmp"
        data = tokens.tobytes()
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / name)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        self.shards.append({"file": name, "tokens": len(tokens), "blake2b": digest})


def content_hash(splits: dict[str, dict[str, Any]]) -> str:
    """One digest over every split's shard digests, in order."""
    digest = hashlib.blake2b(digest_size=16)
    for split in sorted(splits):
        for shard in splits[split]["shards"]:
            digest.update(f"{split}:{shard['blake2b']}:{shard['tokens']};".encode())
    return digest.hexdigest()


def load_manifest(folder: Path, verify_digests: bool = False) -> dict[str, Any]:
    """The folder's manifest after checking that every shard is present with its listed size.

    Raises ShardError naming what is wrong. ``verify_digests`` also re-hashes every shard.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise ShardError(f"{folder} has no {MANIFEST}: its build did not finish")
    try:
        manifest = read_json(path)
    except ValueError as error:
        raise ShardError(str(error)) from None
    if manifest.get("format") != FORMAT_VERSION:
        raise ShardError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT_VERSION}")
    itemsize = np.dtype(manifest["dtype"]).itemsize
    for split, entry in manifest["splits"].items():
        for shard in entry["shards"]:
            file = folder / shard["file"]
            if not file.is_file():
                raise ShardError(f"shard {file} of split {split!r} is missing")
            if file.stat().st_size != shard["tokens"] * itemsize:
                expected = shard["tokens"] * itemsize
                raise ShardError(
                    f"shard {file} has {file.stat().st_size} bytes, expected {expected}: truncated?"
                )
            if verify_digests:
                digest = hashlib.blake2b(file.read_bytes(), digest_size=16).hexdigest()
                if digest != shard["blake2b"]:
                    raise ShardError(f"shard {file} does not match its digest: its content is damaged")
    return manifest


class TokenStream:
    """Read-only view of one split's tokens, the shards concatenated; ``read(start, stop)`` spans shards."""

    def __init__(self, folder: Path, entry: dict[str, Any], dtype: str | np.dtype):
        self.arrays = [
            np.memmap(folder / s["file"], dtype=dtype, mode="r") for s in entry["shards"] if s["tokens"]
        ]
        self.starts = np.cumsum([0] + [len(a) for a in self.arrays])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of the stream (a copy, shape (stop - start,))."""
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"token range [{start}, {stop}) outside a stream of {len(self)} tokens")
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        pieces, position = [], start
        for index in range(first, len(self.arrays)):
            if position >= stop:
                break
            offset = position - int(self.starts[index])
            take = min(stop - position, len(self.arrays[index]) - offset)
            pieces.append(self.arrays[index][offset : offset + take])
            position += take
        if not pieces:
            return np.empty(0, dtype=self.arrays[0].dtype if self.arrays else np.uint16)
        return np.concatenate(pieces) if len(pieces) > 1 else np.array(pieces[0])
