"""Typed data configs: one dataclass per ``kind``, every field documented where declared.

``configs/data/*.yaml`` fill these. :func:`parse_data_config` turns the Hydra ``data`` node (a
DictConfig or a plain dict) into the dataclass of its ``kind``, failing before any work with a
message that names a misspelled key, a wrong type or a bad value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union


def _check_choice(where: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{where} must be one of {list(choices)}, got {value!r}")


def _check_positive(where: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{where} must be >= 1, got {value}")


# ----------------------------------------------------------------------------- language models
@dataclass
class TextDatasetConfig:
    """Where the documents of a language-model corpus come from."""

    source: str = "embedded"
    """"embedded" (the Python standard library's sources: offline), "hub" (``datasets.load_dataset(path,
    name)``: a Hub dataset or a local folder of data files), "disk" (a ``save_to_disk`` folder) or
    "files" (local text/json/jsonl/parquet/csv files)."""
    path: str | None = None
    """hub: the dataset name (e.g. "Skylion007/openwebtext"); disk: the folder."""
    name: str | None = None
    """hub: the configuration name (e.g. "wikitext-103-raw-v1")."""
    split: str = "train"
    """The split that supplies training documents."""
    text_column: str = "text"
    """The column holding each document's text."""
    files: list[str] | None = None
    """files: paths or glob patterns."""
    format: str | None = None
    """files: "text", "json" (also .jsonl), "parquet" or "csv"; inferred from the extension when null."""
    revision: str | None = None
    """hub: a git revision of the dataset repository."""
    streaming: bool = False
    """Stream documents and tokenize on the fly instead of writing shards (corpora too big for the disk)."""
    max_documents: int | None = None
    """Read at most this many training documents (quick runs); null = all."""
    max_bytes: int | None = None
    """Read training documents until this many bytes of text; null = all."""

    def __post_init__(self) -> None:
        _check_choice("data.dataset.source", self.source, ("embedded", "hub", "disk", "files"))
        if self.source in ("hub", "disk") and not self.path:
            raise ValueError(f"data.dataset.path is required when data.dataset.source={self.source!r}")
        if self.source == "files" and not self.files:
            raise ValueError("data.dataset.files (a list of paths or globs) is required when source='files'")
        if self.format is not None:
            _check_choice("data.dataset.format", self.format, ("text", "json", "parquet", "csv"))
        if self.streaming and self.source in ("embedded", "disk"):
            raise ValueError(
                f"data.dataset.streaming works with source 'hub' or 'files', not {self.source!r}"
            )
        _check_positive("data.dataset.max_documents", self.max_documents)
        _check_positive("data.dataset.max_bytes", self.max_bytes)


@dataclass
class TokenizerConfig:
    """Which tokenizer turns documents into token ids."""

    source: str = "train"
    """"train" (a byte-level BPE trained on the corpus with ``tokenizers``), a Hub name (e.g.
    "EleutherAI/gpt-neox-20b") or a path to a ``tokenizer.json``."""
    vocab_size: int = 4096
    """Vocabulary size of a trained tokenizer (special tokens included)."""
    fallback: str = "train"
    """When a Hub tokenizer cannot be fetched (offline): "train" (warn, train one) or "error"."""
    eos_token: str = "<|endoftext|>"
    """Token appended to every document; must be in the vocabulary."""
    pad_token: str | None = "<|padding|>"
    """Padding token, if the vocabulary has one (null = none)."""
    train_max_bytes: int = 50_000_000
    """Bytes of training text used to train a tokenizer (the first documents of the train split)."""

    def __post_init__(self) -> None:
        _check_choice("data.tokenizer.fallback", self.fallback, ("train", "error"))
        if self.vocab_size < 260:
            raise ValueError(
                f"data.tokenizer.vocab_size must be >= 260 (256 bytes + specials), got {self.vocab_size}"
            )
        _check_positive("data.tokenizer.train_max_bytes", self.train_max_bytes)


@dataclass
class ValidationConfig:
    """How the held-out validation split is formed."""

    split: str | None = None
    """A named split of the same dataset (e.g. "validation"); null = hold out a fraction of documents."""
    fraction: float = 0.01
    """Share of documents held out when ``split`` is null, chosen by a hash of each document's text."""
    max_blocks: int | None = 256
    """Blocks per validation pass (null = the whole split; required in streaming mode)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"data.validation.fraction must lie in [0, 1), got {self.fraction}")
        _check_positive("data.validation.max_blocks", self.max_blocks)


@dataclass
class LMDataConfig:
    """A language-model corpus: documents -> tokenizer -> token shards -> blocks of seqlen + 1."""

    kind: str = "lm"
    """Selects this config type."""
    name: str = "corpus"
    """Short name used for the cache folder."""
    seqlen: int = 512
    """Tokens per training sequence (each block holds seqlen + 1 tokens: inputs and shifted labels)."""
    cache_dir: str | None = None
    """Cache root for shards; null = $MAMBA_LM_CACHE or ~/.cache/mamba_lm."""
    dataset: TextDatasetConfig = field(default_factory=TextDatasetConfig)
    """Where the documents come from."""
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    """Which tokenizer."""
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    """The held-out split."""
    packing: bool = False
    """Document-aware packing: batches carry ``seq_idx`` (int32 (B, L): each token's document index)."""
    shard_tokens: int = 100_000_000
    """Tokens per shard file."""
    encode_batch_documents: int = 1000
    """Documents per tokenizer batch (tokenized in parallel by the Rust tokenizer)."""
    max_vocab_size: int | None = None
    """Fail if the tokenizer's vocabulary exceeds this (e.g. the model's vocab_size); null = no check."""
    shuffle_buffer: int = 10_000
    """Streaming mode: documents in the shuffle buffer."""

    def __post_init__(self) -> None:
        _check_positive("data.seqlen", self.seqlen)
        _check_positive("data.shard_tokens", self.shard_tokens)
        _check_positive("data.encode_batch_documents", self.encode_batch_documents)
        _check_positive("data.max_vocab_size", self.max_vocab_size)
        _check_positive("data.shuffle_buffer", self.shuffle_buffer)
        if self.dataset.streaming and self.validation.max_blocks is None:
            raise ValueError("data.validation.max_blocks must be set in streaming mode (a stream has no end)")


# ----------------------------------------------------------------------------- synthetic tasks
@dataclass
class SelectiveCopyingConfig:
    """Selective Copying (Mamba paper, Sec. 4.1): recall data tokens scattered among noise tokens."""

    kind: str = "selective_copying"
    """Selects this config type."""
    seqlen: int = 4096
    """Total sequence length: the scattered region, then one marker per data token."""
    vocab_size: int = 16
    """Token 0 is noise, vocab_size - 1 the marker, 1..vocab_size - 2 data tokens."""
    num_data_tokens: int = 16
    """Data tokens to memorize and reproduce in order."""
    val_examples: int = 512
    """Examples in the fixed validation set."""
    val_seed: int = 1234
    """Seed of the validation set (independent of the run's seed, so runs compare on the same set)."""
    cache_dir: str | None = None
    """Unused (examples are generated on the fly); accepted for uniformity with other data configs."""

    def __post_init__(self) -> None:
        if self.vocab_size < 3:
            raise ValueError(f"data.vocab_size must be >= 3 (noise, marker, data), got {self.vocab_size}")
        _check_positive("data.num_data_tokens", self.num_data_tokens)
        _check_positive("data.val_examples", self.val_examples)
        if self.seqlen < 2 * self.num_data_tokens:
            raise ValueError(f"data.seqlen={self.seqlen} is too short for {self.num_data_tokens} data tokens")


@dataclass
class InductionHeadsConfig:
    """Induction Heads (Mamba paper, Sec. 4.1): after a trigger token, recall what followed it before."""

    kind: str = "induction_heads"
    """Selects this config type."""
    seqlen: int = 256
    """Training sequence length (the paper trains at 256)."""
    vocab_size: int = 16
    """vocab_size - 1 is the trigger token; 0..vocab_size - 2 are ordinary tokens."""
    eval_seqlens: list[int] = field(default_factory=lambda: [2**k for k in range(6, 21)])
    """Test lengths for ``val_loader(batch_size, seqlen=...)`` (the paper: 2^6 .. 2^20)."""
    val_examples: int = 256
    """Examples per validation length."""
    val_seed: int = 1234
    """Seed of the validation sets."""
    cache_dir: str | None = None
    """Unused (examples are generated on the fly); accepted for uniformity with other data configs."""

    def __post_init__(self) -> None:
        if self.vocab_size < 3:
            raise ValueError(f"data.vocab_size must be >= 3, got {self.vocab_size}")
        if self.seqlen < 4 or any(length < 4 for length in self.eval_seqlens):
            raise ValueError("data.seqlen and data.eval_seqlens must be >= 4")
        _check_positive("data.val_examples", self.val_examples)


# ----------------------------------------------------------------------------- Long Range Arena
@dataclass
class LRAConfig:
    """Fields every Long Range Arena task shares."""

    kind: str = ""
    """lra_listops, lra_text, lra_retrieval, lra_image, lra_pathfinder or lra_pathx."""
    source: str = "archive"
    """"generate" (ListOps, Pathfinder), "archive" (files laid out as in lra_release), "hub" (Text, Image)."""
    archive_dir: str | None = None
    """archive: the task's folder (see each task's loader for the layout it expects)."""
    seqlen: int = 0
    """Maximum tokens per example (longer inputs are truncated); 0 = the task's LRA length."""
    cache_dir: str | None = None
    """Cache root for encoded/generated examples; null = $MAMBA_LM_CACHE or ~/.cache/mamba_lm."""
    pad_to_seqlen: bool = False
    """Pad every batch to seqlen (fixed shapes) instead of to its longest example."""
    max_train_examples: int | None = None
    """Use at most this many training examples (quick runs); null = all."""
    max_eval_examples: int | None = None
    """Use at most this many validation/test examples; null = all."""

    def __post_init__(self) -> None:
        if self.seqlen < 0:
            raise ValueError(f"data.seqlen must be >= 0, got {self.seqlen}")
        _check_positive("data.max_train_examples", self.max_train_examples)
        _check_positive("data.max_eval_examples", self.max_eval_examples)


@dataclass
class ListOpsConfig(LRAConfig):
    """ListOps: the value (0..9) of a nested MAX/MIN/MED/SM expression."""

    kind: str = "lra_listops"
    source: str = "generate"
    num_train: int = 96_000
    """generate: training examples (LRA: 96k)."""
    num_val: int = 2_000
    """generate: validation examples (LRA: 2k)."""
    num_test: int = 2_000
    """generate: test examples (LRA: 2k)."""
    min_length: int = 500
    """generate: lengths (digits + operators + brackets) lie strictly above this."""
    max_length: int = 2000
    """generate: ... and strictly below this."""
    max_depth: int = 10
    """generate: maximum tree depth."""
    max_args: int = 10
    """generate: maximum arguments per operator."""
    generation_seed: int = 0
    """generate: seed of the data set (fixed, so every run sees the same data)."""
    workers: int | None = None
    """generate: processes (null = all cores)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("data.source", self.source, ("generate", "archive"))


@dataclass
class TextConfig(LRAConfig):
    """Text: IMDB sentiment (2 classes) read as bytes."""

    kind: str = "lra_text"
    hub_path: str = "stanfordnlp/imdb"
    """hub: the dataset name, or a folder written by ``save_to_disk``."""
    val_fraction: float = 0.0
    """Share of train held out for validation; 0 = validate on test, as LRA did."""
    split_seed: int = 0
    """Seed of the train/validation split."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("data.source", self.source, ("archive", "hub"))


@dataclass
class RetrievalConfig(LRAConfig):
    """Retrieval: whether two AAN papers are linked by a citation (2 classes), read as bytes."""

    kind: str = "lra_retrieval"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("data.source", self.source, ("archive",))


@dataclass
class ImageConfig(LRAConfig):
    """Image: CIFAR-10 in grayscale as a sequence of 1024 pixel intensities (10 classes)."""

    kind: str = "lra_image"
    hub_path: str = "uoft-cs/cifar10"
    """hub: the dataset name, or a folder written by ``save_to_disk``."""
    val_fraction: float = 0.1
    """Share of train held out for validation."""
    split_seed: int = 0
    """Seed of the train/validation split."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("data.source", self.source, ("archive", "hub"))


@dataclass
class PathfinderConfig(LRAConfig):
    """Pathfinder / Path-X: are the two marked dots joined by one contour? (2 classes)."""

    kind: str = "lra_pathfinder"
    source: str = "generate"
    resolution: int | None = None
    """Image side in pixels; null = 32 for lra_pathfinder, 128 for lra_pathx. seqlen = resolution ** 2."""
    difficulty: str = "hard"
    """Contour length: easy (6 paddles), intermediate (9) or hard (14; what LRA uses)."""
    num_examples: int = 200_000
    """generate: images in all (split into train/val/test)."""
    val_fraction: float = 0.1
    """Share of the images held out for validation."""
    test_fraction: float = 0.1
    """Share of the images held out for test."""
    split_seed: int = 42
    """Seed of the train/val/test split."""
    generation_seed: int = 0
    """generate: seed of the images."""
    workers: int | None = None
    """generate: processes (null = all cores)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("data.source", self.source, ("generate", "archive"))
        _check_choice("data.difficulty", self.difficulty, ("easy", "intermediate", "hard"))
        if self.resolution is None:
            self.resolution = 128 if self.kind == "lra_pathx" else 32
        if self.resolution < 32:
            raise ValueError(f"data.resolution must be >= 32, got {self.resolution}")
        if not 0 < self.val_fraction + self.test_fraction < 1:
            raise ValueError("data.val_fraction + data.test_fraction must lie in (0, 1)")


CONFIG_TYPES: dict[str, type] = {
    "lm": LMDataConfig,
    "selective_copying": SelectiveCopyingConfig,
    "induction_heads": InductionHeadsConfig,
    "lra_listops": ListOpsConfig,
    "lra_text": TextConfig,
    "lra_retrieval": RetrievalConfig,
    "lra_image": ImageConfig,
    "lra_pathfinder": PathfinderConfig,
    "lra_pathx": PathfinderConfig,
}
"""Data config type by ``kind``."""


# ----------------------------------------------------------------------------- parsing
def to_plain_dict(config: Any) -> dict[str, Any]:
    """A plain dict from a DictConfig (resolved), a mapping or a config dataclass."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf  # only present when called from Hydra

        return OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return {
            key: to_plain_dict(value) if isinstance(value, Mapping) else value
            for key, value in config.items()
        }
    raise TypeError(f"a data config must be a mapping or DictConfig, got {type(config).__name__}")


def parse_data_config(config: Any) -> Any:
    """The typed config (one of CONFIG_TYPES' values) for a ``data`` node; clear errors on bad keys/values."""
    mapping = to_plain_dict(config)
    kind = mapping.get("kind")
    if kind not in CONFIG_TYPES:
        raise ValueError(f"data.kind must be one of {sorted(CONFIG_TYPES)}, got {kind!r}")
    return _from_mapping(CONFIG_TYPES[kind], mapping, "data")


def _from_mapping(cls: type, mapping: Mapping[str, Any], where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{where} must be a mapping, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known keys: {names}")
    return cls(**{key: _coerce(hints[key], value, f"{where}.{key}") for key, value in mapping.items()})


def _coerce(annotation: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None:
            if type(None) in options:
                return None
            raise TypeError(f"{where} must not be null")
        (inner,) = [option for option in options if option is not type(None)]
        return _coerce(inner, value, where)
    if dataclasses.is_dataclass(annotation):
        return _from_mapping(annotation, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {value!r}")
        (inner,) = typing.get_args(annotation)
        return [_coerce(inner, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise TypeError(f"{where} must be an int, got {value!r}")
    if not isinstance(value, annotation):
        raise TypeError(f"{where} must be {annotation.__name__}, got {type(value).__name__} {value!r}")
    return value
