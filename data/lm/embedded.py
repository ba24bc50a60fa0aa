"""The embedded default corpus: the Python standard library's own sources and docstrings.

Every Python installation carries them, so ``python train.py`` needs no network. The modules
are written once, in path order, as a JSON-lines file (one document per module: ``text`` and
``path``) under the cache root, and from there go through the same ``datasets`` pipeline as any
local corpus. Test suites, site-packages and non-UTF-8 files are left out.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import sysconfig
from pathlib import Path

from mamba_lm.data.cache import atomic_write_bytes, fingerprint

EXCLUDED_PARTS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})


def stdlib_dir() -> Path:
    """The folder of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_modules(root: Path | None = None) -> list[Path]:
    """Paths of the standard library's ``.py`` files that make up the corpus, in sorted order."""
    root = root or stdlib_dir()
    modules = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in EXCLUDED_PARTS]
        modules.extend(Path(folder, name) for name in files if name.endswith(".py"))
    return sorted(modules)


@functools.lru_cache(maxsize=8)
def embedded_corpus_file(cache_root: Path) -> Path:
    """The JSON-lines corpus file, written on first use; its name fingerprints the module list."""
    root = stdlib_dir()
    modules = stdlib_modules(root)
    listing = [(str(path.relative_to(root)), path.stat().st_size) for path in modules]
    version = ".".join(map(str, sys.version_info[:3]))
    target = cache_root / "embedded" / f"stdlib-{version}-{fingerprint(listing)}.jsonl"
    if not target.exists():
        lines = []
        for path in modules:
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if text.strip():
                lines.append(
                    json.dumps({"text": text, "path": str(path.relative_to(root))}, ensure_ascii=False)
                )
        if not lines:
            raise RuntimeError(f"no readable Python sources under {root}; cannot build the embedded corpus")
        atomic_write_bytes(target, ("\n".join(lines) + "\n").encode("utf-8"))
    return target
