"""Config of a language-model corpus (``kind: lm``), every field documented where declared."""

from __future__ import annotations

from dataclasses import dataclass, field

from mamba_lm.data.checks import check_choice, check_positive


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
        check_choice("data.dataset.source", self.source, ("embedded", "hub", "disk", "files"))
        if self.source in ("hub", "disk") and not self.path:
            raise ValueError(f"data.dataset.path is required when data.dataset.source={self.source!r}")
        if self.source == "files" and not self.files:
            raise ValueError("data.dataset.files (a list of paths or globs) is required when source='files'")
        if self.format is not None:
            check_choice("data.dataset.format", self.format, ("text", "json", "parquet", "csv"))
        if self.streaming and self.source in ("embedded", "disk"):
            raise ValueError(
                f"data.dataset.streaming works with source 'hub' or 'files', not {self.source!r}"
            )
        check_positive("data.dataset.max_documents", self.max_documents)
        check_positive("data.dataset.max_bytes", self.max_bytes)


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
        check_choice("data.tokenizer.fallback", self.fallback, ("train", "error"))
        if self.vocab_size < 260:
            raise ValueError(
                f"data.tokenizer.vocab_size must be >= 260 (256 bytes + specials), got {self.vocab_size}"
            )
        check_positive("data.tokenizer.train_max_bytes", self.train_max_bytes)


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
        check_positive("data.validation.max_blocks", self.max_blocks)


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
    verify: str = "sample"
    """Check of the token shards at open: "sample" (size and a digest of sampled blocks: milliseconds),
    "full" (every byte's digest), "off" (size only). A damaged cache is rebuilt with a warning."""

    def __post_init__(self) -> None:
        check_positive("data.seqlen", self.seqlen)
        check_positive("data.shard_tokens", self.shard_tokens)
        check_positive("data.encode_batch_documents", self.encode_batch_documents)
        check_positive("data.max_vocab_size", self.max_vocab_size)
        check_positive("data.shuffle_buffer", self.shuffle_buffer)
        check_choice("data.verify", self.verify, ("off", "sample", "full"))
        if self.dataset.streaming and self.validation.max_blocks is None:
            raise ValueError("data.validation.max_blocks must be set in streaming mode (a stream has no end)")
