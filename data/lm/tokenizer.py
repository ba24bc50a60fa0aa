"""The corpus tokenizer, always materialized as a ``tokenizer.json`` beside the shards.

Three sources: a Hub tokenizer by name (GPT-NeoX-20B's for the paper's runs; needs the
network, or falls back to training one when ``fallback: train``), any ``tokenizer.json`` path,
or a byte-level BPE trained on the corpus's training documents with ``tokenizers`` (offline).
Documents are encoded with the Rust tokenizer's parallel ``encode_batch``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mamba_lm.data.lm.config import TokenizerConfig

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class TokenizerInfo:
    """What the shards and the model need to know about the tokenizer."""

    source: str
    """"trained", or the Hub name / path it came from."""
    vocab_size: int
    """Number of token ids (added tokens included); every id is below it."""
    eos_token_id: int
    pad_token_id: int | None


def is_tokenizer_path(source: str) -> bool:
    """True when ``source`` names a local tokenizer.json (or a folder with one), not a Hub name."""
    return source.endswith(".json") or Path(source).expanduser().exists()


def materialize_tokenizer(
    config: TokenizerConfig, training_texts: Iterable[str], folder: Path
) -> TokenizerInfo:
    """Write ``folder/tokenizer.json`` for ``config`` and describe it.

    ``training_texts`` (consumed only when a tokenizer is trained) are the training documents.
    """
    target = folder / TOKENIZER_FILE
    if config.source == "train":
        train_byte_level_bpe(training_texts, config, target)
        source = "trained"
    elif is_tokenizer_path(config.source):
        copy_tokenizer_file(config.source, target)
        source = config.source
    else:
        source = config.source
        if not fetch_hub_tokenizer(config.source, target):
            if config.fallback == "error":
                raise RuntimeError(
                    f"cannot fetch tokenizer {config.source!r} from the Hugging Face Hub (offline?) and "
                    "data.tokenizer.fallback is 'error'; use a tokenizer.json path or source: train"
                )
            log.warning(
                "tokenizer %r unreachable; training a byte-level BPE on the corpus instead", config.source
            )
            train_byte_level_bpe(training_texts, config, target)
            source = "trained"
    return describe_tokenizer(target, config, source)


def describe_tokenizer(path: Path, config: TokenizerConfig, source: str) -> TokenizerInfo:
    """Vocabulary size and special-token ids of the tokenizer file at ``path``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    eos = tokenizer.token_to_id(config.eos_token)
    if eos is None:
        raise ValueError(
            f"eos token {config.eos_token!r} is not in the vocabulary of tokenizer {source!r}; "
            "set data.tokenizer.eos_token to one of its special tokens"
        )
    pad = tokenizer.token_to_id(config.pad_token) if config.pad_token else None
    return TokenizerInfo(source, tokenizer.get_vocab_size(with_added_tokens=True), eos, pad)


def copy_tokenizer_file(source: str, target: Path) -> None:
    """Copy a tokenizer.json (or the one inside a folder) to ``target``, checking that it loads."""
    from tokenizers import Tokenizer

    path = Path(source).expanduser()
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"data.tokenizer.source: tokenizer file {path} does not exist")
    try:
        Tokenizer.from_file(str(path))
    except Exception as error:
        raise ValueError(f"data.tokenizer.source: {path} is not a valid tokenizer.json ({error})") from error
    shutil.copyfile(path, target)


def fetch_hub_tokenizer(name: str, target: Path) -> bool:
    """Download ``name``'s tokenizer.json to ``target``; False when the Hub cannot be reached."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        shutil.copyfile(hf_hub_download(name, TOKENIZER_FILE), target)
        return True
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise ValueError(f"data.tokenizer.source: no accessible Hub repository {name!r} ({error})") from error
    except RemoteEntryNotFoundError:
        pass  # the repository has no tokenizer.json: let transformers convert its slow files
    except (LocalEntryNotFoundError, OSError) as error:
        log.warning("cannot reach the Hub for tokenizer %r: %s", name, error)
        return False
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(name, use_fast=True).backend_tokenizer.save(str(target))
    except OSError as error:
        log.warning("cannot load tokenizer %r with transformers: %s", name, error)
        return False
    return True


def train_byte_level_bpe(texts: Iterable[str], config: TokenizerConfig, target: Path) -> None:
    """Train a byte-level BPE of ``config.vocab_size`` ids on the first ``train_max_bytes`` of ``texts``.

    Special tokens come first: ``eos_token`` is id 0 and ``pad_token`` id 1, as in GPT-NeoX's.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    def limited() -> Iterable[str]:
        seen = 0
        for text in texts:
            if seen >= config.train_max_bytes:
                return
            yield text
            seen += len(text)

    specials = [config.eos_token] + ([config.pad_token] if config.pad_token else [])
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(limited(), trainer=trainer)
    if tokenizer.get_vocab_size() == len(specials) + 256 and config.vocab_size > len(specials) + 256:
        log.warning("the tokenizer learned no merges: is the training text empty?")
    tokenizer.save(str(target))
