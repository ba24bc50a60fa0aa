"""A real-text corpus of Python source from pinned PyPI packages (issue 11: Mamba vs Transformer++).

``python -m data code-corpus out=DIR [packages=[NAME==VERSION, ...]] [downloads=DIR] [max_file_bytes=N]``

Each package's archive (a wheel, else an sdist ``.tar.gz``/``.zip``) is read from ``downloads``
(default ``DIR/downloads``) or fetched there with ``pip download --no-deps`` at its pinned
version. Its ``.py`` members are read without extracting anything, packages by name and members
by path, both sorted; a file is dropped if it is not UTF-8, is over ``max_file_bytes``, is blank,
or repeats an earlier file byte for byte. The rest go to ``DIR/code-00000.jsonl``, ... (one
``{"text": ..., "path": "PACKAGE-VERSION/MEMBER"}`` per line, ``shard_bytes`` per file), which
``data=code_corpus`` (or ``data=local_files``) reads, and ``DIR/manifest.json`` (package versions,
archives and their sha256, file counts, bytes, the sha256 of each output file) is written last.
The same archives give byte-identical output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mamba_lm.data.cache import atomic_write_bytes, atomic_write_json, read_json

log = logging.getLogger(__name__)

PACKAGES = (
    "astropy==8.0.2",
    "dask==2026.8.0",
    "django==5.2.19",
    "matplotlib==3.11.2",
    "networkx==3.6.1",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "pygments==2.21.0",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "sphinx==9.0.4",
    "sqlalchemy==2.1.9",
    "statsmodels==0.15.0",
    "sympy==1.14.0",
    "transformers==5.24.0",
    "twisted==26.10.0",
    "xarray==2026.9.0",
)
"""Large, mostly hand-written, permissively licensed code bases (BSD, MIT, Apache-2.0, the PSF-style
Matplotlib license), tests included. Measured: 13,931 .py files, 13,218 kept (626 blank, 87
duplicates), 239.4 MB of text, 66.1M tokens with configs/data/code_corpus.yaml's 16K-token BPE
(3.6 bytes per token). Versions are the newest on PyPI when the corpus was first built, pinned
so that every rebuild gives the same bytes."""

PIP_PLATFORM = (
    "--only-binary=:all:",
    "--implementation=cp",
    "--python-version=3.11",
    "--abi=cp311",
    "--abi=abi3",
    "--abi=none",
    "--platform=manylinux_2_28_x86_64",
    "--platform=manylinux_2_17_x86_64",
    "--platform=manylinux2014_x86_64",
)
"""pip's target for binary wheels: fixed, so the same archive is chosen on every machine."""

MANIFEST = "manifest.json"
SHARD_PREFIX = "code-"
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip")


def normalize(name: str) -> str:
    """A distribution name as archives spell it (PEP 503, dashes and dots as underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_spec(spec: str) -> tuple[str, str]:
    """("name", "version") from "name==version"; an error names a spec without an exact version."""
    name, separator, version = spec.partition("==")
    if not separator or not name.strip() or not version.strip():
        raise ValueError(f"package {spec!r} is not NAME==VERSION: the corpus needs exact versions")
    return name.strip(), version.strip()


def archive_name_version(path: Path) -> tuple[str, str] | None:
    """(normalized name, version) of a wheel or sdist file name, None for other files."""
    name = path.name
    if name.endswith(".whl"):
        parts = name[: -len(".whl")].split("-")
        return (normalize(parts[0]), parts[1]) if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip"):
        if name.endswith(suffix):
            stem, _, version = name[: -len(suffix)].rpartition("-")
            return (normalize(stem), version) if stem else None
    return None


def find_archive(downloads: Path, name: str, version: str) -> Path | None:
    """The archive of ``name`` ``version`` in ``downloads`` (a wheel before an sdist), or None."""
    matches = [
        path
        for path in sorted(downloads.glob("*"))
        if archive_name_version(path) == (normalize(name), version)
    ]
    matches.sort(key=lambda path: not path.name.endswith(".whl"))
    return matches[0] if matches else None


def download(spec: str, downloads: Path) -> None:
    """``pip download --no-deps`` one pinned package into ``downloads`` (needs the network)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        *PIP_PLATFORM,
        "-d",
        str(downloads),
        spec,
    ]
    log.info("downloading %s", spec)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pip download {spec} failed ({last}); put its wheel or sdist in {downloads}")


def python_members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(member path, bytes) of each ``.py`` file in a wheel or sdist, sorted by path; nothing is extracted."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as tar:
            members = sorted(
                (m for m in tar.getmembers() if m.isfile() and m.name.endswith(".py")), key=_name
            )
            for member in members:
                yield member.name, tar.extractfile(member).read()
        return
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(n for n in zipped.namelist() if n.endswith(".py") and not n.endswith("/"))
        for name in names:
            yield name, zipped.read(name)


def _name(member: tarfile.TarInfo) -> str:
    return member.name


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class ShardedJsonl:
    """Writes ``{"text", "path"}`` lines into ``code-NNNNN.jsonl`` files of about ``shard_bytes`` each."""

    def __init__(self, out: Path, shard_bytes: int):
        self.out, self.shard_bytes = out, shard_bytes
        self.lines: list[bytes] = []
        self.size = self.documents = 0
        self.outputs: list[dict[str, Any]] = []

    def add(self, text: str, path: str) -> None:
        line = (json.dumps({"text": text, "path": path}, ensure_ascii=False) + "\n").encode()
        self.lines.append(line)
        self.size += len(line)
        self.documents += 1
        if self.size >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        name = f"{SHARD_PREFIX}{len(self.outputs):05d}.jsonl"
        data = b"".join(self.lines)
        atomic_write_bytes(self.out / name, data)
        sha = hashlib.sha256(data).hexdigest()
        self.outputs.append({"file": name, "documents": self.documents, "bytes": len(data), "sha256": sha})
        self.lines, self.size, self.documents = [], 0, 0


def build_code_corpus(
    out: str | Path,
    packages: list[str] | tuple[str, ...] = PACKAGES,
    downloads: str | Path | None = None,
    max_file_bytes: int = 1_000_000,
    shard_bytes: int = 64_000_000,
) -> dict[str, Any]:
    """Build the corpus in ``out`` (see the module docstring); return its manifest."""
    out = Path(out).expanduser().resolve()
    downloads = Path(downloads).expanduser().resolve() if downloads else out / "downloads"
    if max_file_bytes < 1 or shard_bytes < 1:
        raise ValueError(f"max_file_bytes and shard_bytes must be >= 1, got {max_file_bytes}, {shard_bytes}")
    pinned = sorted((parse_spec(spec) for spec in packages), key=lambda item: normalize(item[0]))
    out.mkdir(parents=True, exist_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the manifest is back
    archives = {}
    for name, version in pinned:
        if find_archive(downloads, name, version) is None:
            download(f"{name}=={version}", downloads)
        archive = find_archive(downloads, name, version)
        if archive is None:
            raise FileNotFoundError(f"no wheel or sdist of {name}=={version} in {downloads}")
        archives[name] = archive

    writer = ShardedJsonl(out, shard_bytes)
    seen: set[bytes] = set()
    totals = {"python_files": 0, "kept": 0, "duplicates": 0, "not_utf8": 0, "too_large": 0, "blank": 0}
    package_entries = []
    for name, version in pinned:
        archive = archives[name]
        counts = {"kept": 0, "bytes": 0}
        for member, data in python_members(archive):
            totals["python_files"] += 1
            reason = _drop_reason(data, max_file_bytes, seen)
            if reason:
                totals[reason] += 1
                continue
            writer.add(data.decode("utf-8"), f"{name}-{version}/{member}")
            counts["kept"] += 1
            counts["bytes"] += len(data)
        totals["kept"] += counts["kept"]
        package_entries.append(
            {
                "name": name,
                "version": version,
                "archive": archive.name,
                "archive_sha256": file_sha256(archive),
            }
            | counts
        )
        log.info("%s %s: %d files, %.1f MB", name, version, counts["kept"], counts["bytes"] / 1e6)
    writer.flush()
    for stale in sorted(out.glob(f"{SHARD_PREFIX}*.jsonl")):
        if stale.name not in {entry["file"] for entry in writer.outputs}:
            stale.unlink()
    manifest = {
        "packages": package_entries,
        "files": totals,
        "text_bytes": sum(entry["bytes"] for entry in package_entries),
        "max_file_bytes": max_file_bytes,
        "outputs": writer.outputs,
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _drop_reason(data: bytes, max_file_bytes: int, seen: set[bytes]) -> str | None:
    """Why a file is left out (a key of the manifest's "files" counts) or None; records kept files in seen."""
    if len(data) > max_file_bytes:
        return "too_large"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    if not text.strip():
        return "blank"
    digest = hashlib.sha256(data).digest()
    if digest in seen:
        return "duplicates"
    seen.add(digest)
    return None


def check_outputs(out: str | Path) -> dict[str, Any]:
    """The manifest of a built corpus after checking each output's sha256 (ValueError naming a mismatch)."""
    out = Path(out)
    manifest = read_json(out / MANIFEST)
    for entry in manifest["outputs"]:
        actual = file_sha256(out / entry["file"])
        if actual != entry["sha256"]:
            raise ValueError(
                f"{out / entry['file']} has sha256 {actual}, the manifest lists {entry['sha256']}"
            )
    return manifest
