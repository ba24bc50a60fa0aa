"""Atomic writes: the one place that writes a file or a folder so that a crash never leaves half of it.

A file is written to a temporary sibling (``.NAME.PID-RANDOM.tmp``), flushed with ``fsync`` and renamed over
its final name; the folder entry is flushed too. A folder (a checkpoint, a cache artefact) is filled under a
temporary sibling name and renamed into place when complete. Everything written gets the permissions a
plain ``open`` would give (0644 files and 0755 folders under a 022 umask), whatever wrote it (``mkstemp``
and safetensors would leave 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TEMPORARY_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file under the current umask (0o644 under 022)."""
    return 0o666 & ~_umask()


def default_folder_mode() -> int:
    """The mode ``mkdir`` gives a new folder under the current umask (0o755 under 022)."""
    return 0o777 & ~_umask()


def temporary_sibling(path: Path) -> Path:
    """A fresh name beside ``path`` for writing it: ``.NAME.PID-RANDOM.tmp`` (readers skip dot-names)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def leftover_temporaries(path: Path) -> list[Path]:
    """Temporary siblings of ``path`` left by a killed writer (files or folders)."""
    return sorted(path.parent.glob(f".{path.name}.*{TEMPORARY_SUFFIX}"))


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Let ``write(temporary_path)`` create the file, then fsync it and rename it to ``path``.

    For writers that insist on a path of their own (matplotlib's ``savefig``, ``shutil.copyfile``).
    If ``write`` raises, nothing is left behind and ``path`` is untouched. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        write(temporary)
        os.chmod(temporary, default_file_mode())
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); returns ``path``."""
    return atomic_write_with(path, lambda temporary: temporary.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, value: Any, *, sort_keys: bool = False) -> Path:
    """Write ``value`` as indented JSON to ``path`` atomically; returns ``path``."""
    text = json.dumps(value, indent=2, sort_keys=sort_keys)
    return atomic_write_text(path, text + "\n")


def atomic_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the file ``source`` to ``path`` atomically; returns ``path``."""
    return atomic_write_with(path, lambda temporary: shutil.copyfile(source, temporary))


def _finish_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` and give them the default permissions."""
    file_mode, folder_mode = default_file_mode(), default_folder_mode()
    for root, folders, files in os.walk(folder):
        for name in files:
            file = Path(root) / name
            os.chmod(file, file_mode)
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        for name in folders:
            os.chmod(Path(root) / name, folder_mode)
        fsync_dir(Path(root))
    os.chmod(folder, folder_mode)


@contextlib.contextmanager
def atomic_directory(final: Path, replaceable: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary sibling folder of ``final``; when the block ends it is renamed to ``final``.

    An existing ``final`` is replaced only when ``replaceable(final)`` says so (a damaged or partial folder);
    otherwise FileExistsError names it, before the block runs and again before the rename. If the block
    raises, the temporary folder is deleted and ``final`` is untouched; a killed process leaves only a
    dot-named temporary folder (``leftover_temporaries``), which readers ignore.
    """
    final = Path(final)

    def refuse_existing() -> None:
        if final.exists() and (replaceable is None or not replaceable(final)):
            raise FileExistsError(f"{final} already exists and is complete: not replacing it")

    refuse_existing()
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(final)
    temporary.mkdir()
    try:
        yield temporary
        _finish_tree(temporary)
        refuse_existing()
        if final.exists():
            shutil.rmtree(final)
        os.rename(temporary, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
