"""Cache folders, content fingerprints and atomic writes shared by every data builder.

Built artefacts (token shards, generated LRA sets, the embedded corpus) live under one cache
root: ``cache_dir`` from the data config, else ``$MAMBA_LM_CACHE``, else ``~/.cache/mamba_lm``; Hugging Face
datasets downloads go where $HF_DATASETS_CACHE / $HF_HOME say when set, else to ROOT/hf.
Each artefact is a folder named by a fingerprint of everything it was built from; it is built
in a temporary sibling folder and renamed into place only when complete, so a folder that
exists under its final name is whole. A per-folder lock file keeps concurrent processes (data
parallel ranks) from building the same thing twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mamba_lm.files import atomic_directory, atomic_write_bytes, leftover_temporaries  # noqa: F401 (re-exported)
from mamba_lm.files import atomic_write_json as _atomic_write_json

CACHE_ENV = "MAMBA_LM_CACHE"
HF_CACHE_ENVS = ("HF_DATASETS_CACHE", "HF_HOME")


def cache_root(cache_dir: str | os.PathLike | None) -> Path:
    """The cache root: ``cache_dir`` if given, else ``$MAMBA_LM_CACHE``, else ``~/.cache/mamba_lm``."""
    chosen = cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mamba_lm"
    return Path(chosen).expanduser().resolve()


def hf_datasets_cache(root: Path) -> str | None:
    """``cache_dir`` for ``datasets.load_dataset``: None (datasets' own choice) when $HF_DATASETS_CACHE or
    $HF_HOME is set, so Hugging Face's cache settings are honoured; else ROOT/hf."""
    if any(os.environ.get(name) for name in HF_CACHE_ENVS):
        return None
    return str(Path(root) / "hf")


def fingerprint(value: Any, length: int = 16) -> str:
    """Stable hex digest of a JSON-serializable value (dict key order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:length]


def file_digest(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """blake2b-128 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON with sorted keys to ``path`` atomically (``mamba_lm.files``)."""
    _atomic_write_json(path, value, sort_keys=True)


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file, with an error that names the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) for the block's duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(
    target: Path,
    is_valid: Callable[[Path], bool],
    build: Callable[[Path], None],
    on_rebuild: Callable[[str], None] | None = None,
) -> Path:
    """Return folder ``target``, building it with ``build(temporary_folder)`` unless it is valid.

    ``is_valid(target)`` decides reuse. Otherwise any stale ``target`` (and temporary folders
    left by a killed build) is removed, ``build``
    fills a fresh temporary sibling folder and that folder is renamed to ``target``; if ``build``
    raises, nothing is left under ``target``'s name. Holds ``target``'s lock file meanwhile.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{target.name}.lock"):
        if target.exists() and is_valid(target):
            return target
        for leftover in leftover_temporaries(target):  # from a process killed mid-build
            shutil.rmtree(leftover, ignore_errors=True)
        if target.exists():
            if on_rebuild is not None:
                on_rebuild(f"{target} is incomplete or damaged; rebuilding it")
            shutil.rmtree(target)
        with atomic_directory(target) as temporary:
            build(temporary)
    return target
