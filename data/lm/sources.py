"""Documents of a language-model corpus as a Hugging Face ``datasets`` object.

Every source (the embedded corpus, a Hub dataset, a ``save_to_disk`` folder, local files) ends
as a ``datasets.Dataset`` (or ``IterableDataset`` when streaming) with a text column, checked
for existence, emptiness and the column before anything is tokenized.
"""

from __future__ import annotations

import codecs
import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mamba_lm.data.cache import fingerprint, hf_datasets_cache
from mamba_lm.data.lm.config import TextDatasetConfig
from mamba_lm.data.lm.embedded import embedded_corpus_file

EXTENSION_FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
"""``datasets`` builder by file extension; a text file is read as one document."""
TEXT_FORMATS = ("text", "json", "csv")
"""Builders whose files must be UTF-8 text."""


def resolve_files(patterns: list[str]) -> list[Path]:
    """Sorted, de-duplicated files matching ``patterns``; an error names any pattern with no match."""
    files: list[Path] = []
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else [expanded]
        matches = [match for match in matches if Path(match).is_file()]
        if not matches:
            raise FileNotFoundError(f"data.dataset.files: no file found for {pattern!r}")
        files.extend(Path(match).resolve() for match in matches)
    return list(dict.fromkeys(files))


def files_format(files: list[Path], declared: str | None) -> str:
    """The ``datasets`` builder for ``files``: ``declared``, else inferred from one common extension."""
    if declared is not None:
        return declared
    formats = {EXTENSION_FORMATS.get(path.suffix.lower()) for path in files}
    if None in formats or len(formats) != 1:
        suffixes = sorted({path.suffix for path in files})
        raise ValueError(
            f"cannot infer one data.dataset.format from file extensions {suffixes}; "
            f"known: {sorted(EXTENSION_FORMATS)}; set data.dataset.format"
        )
    return formats.pop()


def source_fingerprint(config: TextDatasetConfig, cache_root: Path) -> Any:
    """What identifies the documents' content, for the shard cache key."""
    if config.source == "embedded":
        return embedded_corpus_file(cache_root).name
    if config.source == "files":
        files = resolve_files(config.files or [])
        return [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    if config.source == "disk":
        folder = Path(config.path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"data.dataset.path: no dataset folder at {folder}")
        entries = sorted(p for p in folder.rglob("*") if p.is_file())
        return fingerprint(
            [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in entries]
        )
    return [config.path, config.name, config.revision]


def describe_source(config: TextDatasetConfig) -> str:
    """A short human-readable name of the source, for messages and the manifest."""
    if config.source == "files":
        return f"files {config.files}"
    if config.source in ("hub", "disk"):
        return f"{config.source} {config.path}" + (f" ({config.name})" if config.name else "")
    return "embedded (Python standard library)"


def load_documents(config: TextDatasetConfig, split: str, cache_root: Path, streaming: bool = False) -> Any:
    """The ``split`` of the configured source as a ``datasets.Dataset`` (``IterableDataset`` if streaming).

    Raises FileNotFoundError for a missing file or folder, ValueError for a missing split, an
    empty dataset, or a text column that does not exist.
    """
    import datasets

    hf_cache = hf_datasets_cache(cache_root)
    what = describe_source(config)
    if config.source == "embedded":
        _require_train_split(split, what)
        dataset = datasets.load_dataset(
            "json", data_files=str(embedded_corpus_file(cache_root)), split="train", cache_dir=hf_cache
        )
    elif config.source == "files":
        _require_train_split(split, what)
        files = resolve_files(config.files or [])
        if all(path.stat().st_size == 0 for path in files):
            raise ValueError(f"dataset {what} is empty: every file has 0 bytes")
        builder = files_format(files, config.format)
        extra = {"sample_by": "document"} if builder == "text" else {}
        if builder in TEXT_FORMATS and not streaming:  # one pass over the files, once per shard build
            if reason := find_unreadable_file(files):
                raise ValueError(reason)
        try:
            dataset = datasets.load_dataset(
                builder,
                data_files=[str(f) for f in files],
                split="train",
                cache_dir=hf_cache,
                streaming=streaming,
                **extra,
            )
            if streaming:
                next(iter(dataset), None)  # reads the first file now, so an unreadable one is named here
        except Exception as error:  # datasets reports e.g. an empty JSON file as a bare StopIteration
            raise read_error(config, error) from error
    elif config.source == "disk":
        folder = Path(config.path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"data.dataset.path: no dataset folder at {folder}")
        dataset = datasets.load_from_disk(str(folder))
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise ValueError(f"{what} has no split {split!r}; its splits are {sorted(dataset)}")
            dataset = dataset[split]
        else:
            _require_train_split(split, what)
    else:
        try:
            dataset = datasets.load_dataset(
                config.path,
                config.name,
                split=split,
                revision=config.revision,
                cache_dir=hf_cache,
                streaming=streaming,
            )
        except ValueError as error:
            raise ValueError(f"{what}: cannot load split {split!r}: {error}") from error
    check_text_column(dataset, config.text_column, f"{what} [{split}]")
    return dataset


def find_unreadable_file(files: list[Path], chunk_bytes: int = 1 << 20) -> str | None:
    """Why the first of ``files`` that is not UTF-8 text is unreadable (file, byte offset), else None.

    A NUL byte counts as binary (UTF-16 text, archives, arrays), an invalid or truncated UTF-8
    sequence as not UTF-8. Reads each file once in chunks.
    """
    for path in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0  # of the chunk's first byte in the file
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(chunk_bytes)
                if (nul := chunk.find(b"\0")) >= 0:
                    return f"corpus file {path} is binary, not text: a NUL byte at offset {offset + nul}"
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as error:
                    byte = error.object[error.start]
                    position = offset - pending + error.start
                    return f"corpus file {path} is not UTF-8 text: byte 0x{byte:02x} at offset {position}"
                if not chunk:
                    break
                offset += len(chunk)
    return None


def read_error(config: TextDatasetConfig, error: Exception) -> ValueError:
    """One-line error for a failure while reading ``config``'s documents, naming a file that is not UTF-8."""
    if config.source == "files":
        files = resolve_files(config.files or [])
        if files_format(files, config.format) in TEXT_FORMATS and (reason := find_unreadable_file(files)):
            return ValueError(reason)
    cause = error.__cause__ or error.__context__
    detail = f"{type(error).__name__} {error}" + (f" ({type(cause).__name__}: {cause})" if cause else "")
    return ValueError(f"cannot read {describe_source(config)}: {detail}")


def _require_train_split(split: str, what: str) -> None:
    if split != "train":
        raise ValueError(
            f"{what} has one split ('train'), not {split!r}; hold out validation documents with "
            "data.validation.fraction instead of data.validation.split"
        )


def check_text_column(dataset: Any, column: str, what: str) -> None:
    """Fail with a clear message if ``dataset`` is empty or lacks ``column``."""
    columns = dataset.column_names
    if columns is None:  # a stream whose features are unknown until read
        first = next(iter(dataset), None)
        if first is None:
            raise ValueError(f"dataset {what} is empty")
        columns = list(first)
    if column not in columns:
        raise ValueError(
            f"text column {column!r} does not exist in dataset {what}; its columns are {columns}"
        )
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        raise ValueError(f"dataset {what} is empty")


def iter_text_batches(
    dataset: Any,
    column: str,
    batch_documents: int,
    max_documents: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[list[str]]:
    """Lists of non-empty document texts, in dataset order, stopping at the document/byte limits."""
    documents = text_bytes = 0
    for batch in dataset.iter(batch_size=batch_documents):
        texts = []
        for text in batch[column]:
            if max_documents is not None and documents >= max_documents:
                break
            if max_bytes is not None and text_bytes >= max_bytes:
                break
            if not isinstance(text, str):
                if text is None:
                    continue
                raise TypeError(f"text column {column!r} holds {type(text).__name__} values, not strings")
            if text:
                texts.append(text)
                documents += 1
                text_bytes += len(text.encode("utf-8"))
        if texts:
            yield texts
        if (max_documents is not None and documents >= max_documents) or (
            max_bytes is not None and text_bytes >= max_bytes
        ):
            return
