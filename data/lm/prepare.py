"""Build (or reuse) the token shards of a language-model corpus.

``prepare_corpus(config)`` returns a cache folder holding ``tokenizer.json``, the shards of the
``train`` and ``val`` splits and ``manifest.json``. The folder's name and the manifest carry a
fingerprint of everything the shards depend on (source and its files, tokenizer, validation
rule), so a second run with the same config reuses them and a changed config builds anew.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from mamba_lm.data.cache import atomic_write_json, build_once, cache_root, fingerprint
from mamba_lm.data.lm.config import LMDataConfig
from mamba_lm.data.lm.shards import (
    FORMAT_VERSION,
    MANIFEST,
    ShardError,
    ShardWriter,
    content_hash,
    load_manifest,
    sampling_entry,
    token_dtype,
)
from mamba_lm.data.lm.sources import describe_source, iter_text_batches, load_documents, source_fingerprint
from mamba_lm.data.lm.tokenizer import TOKENIZER_FILE, is_tokenizer_path, materialize_tokenizer

log = logging.getLogger(__name__)


def is_held_out(text: str, fraction: float) -> bool:
    """Whether a document belongs to the validation split: a hash of its text below ``fraction``.

    Depends on the text alone, so it holds for any reading order, rank or streaming.
    """
    if fraction <= 0.0:
        return False
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") < fraction * 2**64


def check_vocab_fits(vocab_size: int, limit: int | None, what: str = "the tokenizer") -> None:
    """Raise ValueError if ``vocab_size`` ids do not fit a model vocabulary of ``limit`` (None = any)."""
    if limit is not None and vocab_size > limit:
        raise ValueError(
            f"{what} has {vocab_size} tokens, more than the model's vocabulary of {limit} "
            "(data.max_vocab_size / model.vocab_size): token ids would index past the embedding"
        )


def corpus_key(config: LMDataConfig, root: Path) -> dict[str, Any]:
    """Everything the shards depend on (sequence length and packing are applied at load time)."""
    dataset = {k: v for k, v in vars(config.dataset).items() if k != "streaming"}
    tokenizer = dict(vars(config.tokenizer))
    if is_tokenizer_path(config.tokenizer.source):
        path = Path(config.tokenizer.source).expanduser()
        path = path / TOKENIZER_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"data.tokenizer.source: tokenizer file {path} does not exist")
        tokenizer["file_digest"] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    validation = {"split": config.validation.split, "fraction": config.validation.fraction}
    return {
        "format": FORMAT_VERSION,
        "dataset": dataset,
        "source": source_fingerprint(config.dataset, root),
        "tokenizer": tokenizer,
        "validation": validation,
        "shard_tokens": config.shard_tokens,
    }


def prepare_corpus(config: LMDataConfig) -> tuple[Path, dict[str, Any]]:
    """The shard folder for ``config`` (built if missing, damaged or stale) and its manifest."""
    root = cache_root(config.cache_dir)
    key = fingerprint(corpus_key(config, root), length=32)
    folder = root / "lm" / f"{config.name}-{key[:16]}"

    reused: list[dict[str, Any]] = []  # the manifest of a cache that passed data.verify's check

    def is_valid(candidate: Path) -> bool:
        try:
            manifest = load_manifest(candidate, config.verify)
        except (ShardError, KeyError) as error:
            log.warning("%s", error)
            return False
        if manifest.get("fingerprint") != key:
            return False
        reused.append(manifest)
        return True

    build_once(folder, is_valid, lambda temporary: build_corpus(config, root, key, temporary), log.warning)
    manifest = reused[0] if reused else load_manifest(folder, "off")  # just built: sizes suffice
    log.info("token shards of %s: %s", manifest["source"], folder)
    check_vocab_fits(
        manifest["tokenizer"]["vocab_size"], config.max_vocab_size, f"tokenizer {config.tokenizer.source!r}"
    )
    return folder, manifest


def build_corpus(config: LMDataConfig, root: Path, key: str, folder: Path) -> None:
    """Tokenize the corpus into ``folder``: tokenizer.json, shards, and the manifest last."""
    started = time.time()
    data = config.dataset
    train = load_documents(data, data.split, root)
    held_out = load_documents(data, config.validation.split, root) if config.validation.split else None
    fraction = 0.0 if held_out is not None else config.validation.fraction
    log.info("tokenizing %s", describe_source(data))

    def train_batches() -> Iterator[list[str]]:
        return iter_text_batches(
            train, data.text_column, config.encode_batch_documents, data.max_documents, data.max_bytes
        )

    training_texts = (text for batch in train_batches() for text in batch if not is_held_out(text, fraction))
    info = materialize_tokenizer(config.tokenizer, training_texts, folder)
    check_vocab_fits(info.vocab_size, config.max_vocab_size, f"tokenizer {info.source!r}")
    dtype = token_dtype(info.vocab_size)
    writers = {split: ShardWriter(folder, split, dtype, config.shard_tokens) for split in ("train", "val")}

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    eos = np.array([info.eos_token_id], dtype=dtype)

    def encode(batches: Iterator[list[str]], validation: bool) -> None:
        for texts in batches:
            for text, encoding in zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False)):
                ids = np.array(encoding.ids, dtype=np.int64)
                if len(ids) and ids.max() >= info.vocab_size:
                    raise ValueError(f"tokenizer produced id {ids.max()} >= its vocab size {info.vocab_size}")
                split = "val" if validation or is_held_out(text, fraction) else "train"
                writers[split].add_document(np.concatenate([ids.astype(dtype), eos]))

    encode(train_batches(), validation=False)
    if held_out is not None:
        encode(iter_text_batches(held_out, data.text_column, config.encode_batch_documents), validation=True)
    splits = {split: writer.close() for split, writer in writers.items()}
    if splits["train"]["tokens"] == 0:
        raise ValueError(f"{describe_source(data)} has no non-empty documents in column {data.text_column!r}")
    if splits["val"]["tokens"] == 0:
        raise ValueError(
            f"the validation split of {describe_source(data)} is empty: data.validation.fraction="
            f"{config.validation.fraction} held out none of {splits['train']['documents']} documents; "
            "raise it or name a split in data.validation.split"
        )
    atomic_write_json(
        folder / MANIFEST,
        {
            "format": FORMAT_VERSION,
            "fingerprint": key,
            "source": describe_source(data),
            "dataset": {k: v for k, v in vars(data).items()},
            "validation": vars(config.validation),
            "tokenizer": {
                "file": TOKENIZER_FILE,
                "source": info.source,
                "vocab_size": info.vocab_size,
                "eos_token": config.tokenizer.eos_token,
                "eos_token_id": info.eos_token_id,
                "pad_token": config.tokenizer.pad_token if info.pad_token_id is not None else None,
                "pad_token_id": info.pad_token_id,
            },
            "dtype": dtype.name,
            "splits": splits,
            "content_hash": content_hash(splits),
            "sampling": sampling_entry(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.time() - started, 2),
        },
    )
    log.info("tokens per split: %s", {split: entry["tokens"] for split, entry in splits.items()})
