"""Token shards: contiguous uint16/uint32 arrays on disk, described by a JSON manifest.

A split's token stream is the concatenation of its shard files (``train-00000.bin``, ...).
Each shard is written to a temporary name, fsynced and renamed; the manifest, written last and
atomically, lists every shard with its token count, its blake2b digest and a digest of a few
sampled blocks. A reader accepts a folder only if its manifest is present and every shard passes
the check chosen by ``verify`` (``data.verify``):

- "off": each shard exists with exactly the listed size (so an interrupted write never loads);
- "sample" (default): and the digest of ``SAMPLE_BLOCKS`` evenly spaced blocks of
  ``SAMPLE_BLOCK_BYTES`` matches (about 0.5 MiB read per shard: milliseconds for GBs). It catches
  a shard replaced, zeroed or shifted; a few damaged bytes between the sampled blocks need "full";
- "full": and the blake2b digest of every byte matches.

A manifest written before sampled digests existed is checked in full once under "sample"; if
it passes, the sampled digests are added to it (atomically), so later opens are cheap again.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from mamba_lm.data.cache import atomic_write_json, file_digest, read_json

from mamba_lm.files import atomic_write_bytes

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
VERIFY_MODES = ("off", "sample", "full")
SAMPLE_BLOCKS = 32
SAMPLE_BLOCK_BYTES = 16384


class ShardError(ValueError):
    """A shard folder is incomplete, damaged or of another format."""


def sampled_digest(handle: BinaryIO, size: int, blocks: int, block_bytes: int) -> str:
    """blake2b-128 of ``blocks`` evenly spaced blocks of ``block_bytes`` (first and last included).

    ``handle`` is a seekable binary file of ``size`` bytes; a file no larger than
    ``blocks * block_bytes`` is hashed whole. The size enters the digest.
    """
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    if size <= blocks * block_bytes:
        offsets, length = [0], size
    else:
        last = size - block_bytes
        offsets, length = [i * last // max(blocks - 1, 1) for i in range(blocks)], block_bytes
    for offset in offsets:
        handle.seek(offset)
        digest.update(handle.read(length))
    return digest.hexdigest()


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
        data = tokens.tobytes()
        atomic_write_bytes(self.folder / name, data)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        sampled = sampled_digest(io.BytesIO(data), len(data), SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES)
        self.shards.append(
            {"file": name, "tokens": len(tokens), "blake2b": digest, "sampled_blake2b": sampled}
        )


def sampling_entry() -> dict[str, int]:
    """The manifest's description of how ``sampled_blake2b`` digests were taken."""
    return {"blocks": SAMPLE_BLOCKS, "block_bytes": SAMPLE_BLOCK_BYTES}


def content_hash(splits: dict[str, dict[str, Any]]) -> str:
    """One digest over every split's shard digests, in order."""
    digest = hashlib.blake2b(digest_size=16)
    for split in sorted(splits):
        for shard in splits[split]["shards"]:
            digest.update(f"{split}:{shard['blake2b']}:{shard['tokens']};".encode())
    return digest.hexdigest()


def load_manifest(folder: Path, verify: str = "sample") -> dict[str, Any]:
    """The folder's manifest after checking every shard as ``verify`` says ("off", "sample", "full").

    Raises ShardError naming the shard and what differs. Under "sample", shards of an old
    manifest without sampled digests are hashed in full and the manifest gains their digests.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
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
    sampling = manifest.get("sampling", sampling_entry())
    upgraded = []
    for split, entry in manifest["splits"].items():
        for shard in entry["shards"]:
            file = folder / shard["file"]
            what = f"shard {file} of split {split!r}"
            if not file.is_file():
                raise ShardError(f"{what} is missing")
            size, expected = file.stat().st_size, shard["tokens"] * itemsize
            if size != expected:
                raise ShardError(f"{what} has {size} bytes, expected {expected}: truncated or replaced?")
            if verify == "off":
                continue
            if verify == "full" or "sampled_blake2b" not in shard:
                digest = file_digest(file)
                if digest != shard["blake2b"]:
                    raise ShardError(
                        f"{what} has blake2b {digest}, its manifest lists {shard['blake2b']}: "
                        "same size, damaged content"
                    )
            if "sampled_blake2b" not in shard:
                with open(file, "rb") as handle:
                    shard["sampled_blake2b"] = sampled_digest(handle, size, SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES)
                upgraded.append(shard["file"])
                continue
            with open(file, "rb") as handle:
                sampled = sampled_digest(handle, size, sampling["blocks"], sampling["block_bytes"])
            if sampled != shard["sampled_blake2b"]:
                raise ShardError(
                    f"{what} differs from its manifest in the sampled blocks (same size, other content: "
                    "overwritten or damaged)"
                )
    if upgraded:
        _record_sampled_digests(path, manifest, len(upgraded))
    return manifest


def _record_sampled_digests(path: Path, manifest: dict[str, Any], count: int) -> None:
    """Rewrite an old manifest whose shards all passed a full check with their new sampled digests."""
    if "sampling" in manifest and manifest["sampling"] != sampling_entry():
        raise ShardError(
            f"{path} lists sampled digests of another kind ({manifest['sampling']}) for some shards"
        )
    manifest["sampling"] = sampling_entry()
    try:
        atomic_write_json(path, manifest)
    except OSError as error:
        log.warning(
            "cannot add sampled digests to %s (%s): each open will hash its shards in full", path, error
        )
        return
    log.info(
        "%s predates sampled digests: %d shards passed a full check; their sampled digests are recorded",
        path,
        count,
    )


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
