"""Build (or reuse) the encoded example store of a Long Range Arena data config.

Each task's builder reads or generates its splits and writes them with
:mod:`data.lra.store`; the store folder is named by a fingerprint of the config (and of the
archive folder's location and modification time), so a changed config builds anew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from mamba_lm.data.cache import build_once, cache_root, fingerprint, read_json
from mamba_lm.data.lra import archive, listops
from mamba_lm.data.lra.generated import generate_listops_rows, generate_pathfinder
from mamba_lm.data.lra.pathfinder import PATHFINDER_GENERATOR_VERSION
from mamba_lm.data.lra.release import listops_release, pathfinder_release, s4_split_assignment
from mamba_lm.data.lra.store import META, SplitWriter, finish_store, write_split
from mamba_lm.data.lra.tasks import LRA_TASKS

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
LOAD_TIME_KEYS = (
    "cache_dir",
    "pad_to_seqlen",
    "pad_multiple",
    "max_train_examples",
    "max_eval_examples",
    "workers",
)


def split_assignment(count: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split of each of ``count`` examples (0 train, 1 val, 2 test) from a seeded permutation."""
    order = np.random.default_rng(seed).permutation(count)
    val, test = round(count * val_fraction), round(count * test_fraction)
    assignment = np.zeros(count, dtype=np.int8)
    assignment[order[:val]] = 1
    assignment[order[val : val + test]] = 2
    return assignment


def _carve(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    """(kept, held out): a seeded ``fraction`` of ``examples`` held out."""
    assignment = split_assignment(len(examples), fraction, 0.0, seed)
    return [e for e, s in zip(examples, assignment) if s == 0], [
        e for e, s in zip(examples, assignment) if s == 1
    ]


def _build_listops(config, folder: Path, seqlen: int, dtype: np.dtype) -> dict[str, Any]:
    if config.source == "archive":
        source = listops_release(config.archive_dir) or archive.require_folder(
            config.archive_dir, "lra_release/ or its listops-1000/"
        )
        for split in ("train", "val", "test"):
            write_split(folder, split, archive.listops_split(source, split, seqlen), dtype, 1)
        return {}
    total = config.num_train + config.num_val + config.num_test
    options = {k: getattr(config, k) for k in ("min_length", "max_length", "max_depth", "max_args")}
    rows = generate_listops_rows(total, config.generation_seed, config.workers, **options)
    bounds = {"train": (0, config.num_train), "val": (config.num_train, config.num_train + config.num_val)}
    bounds["test"] = (config.num_train + config.num_val, total)
    for split, (start, stop) in bounds.items():
        examples = (([listops.encode(source)[:seqlen]], label) for source, label in rows[start:stop])
        write_split(folder, split, examples, dtype, 1)
    return {}


def _build_text(config, folder: Path, seqlen: int, dtype: np.dtype) -> dict[str, Any]:
    if config.source == "archive":
        source = archive.require_folder(config.archive_dir, "aclImdb/ (the IMDB review tarball)")
        read = lambda split: archive.imdb_archive_split(source, split, seqlen)
    else:
        read = lambda split: archive.imdb_hub_split(config.hub_path, split, seqlen)
    return _write_train_test(folder, read, config.val_fraction, config.split_seed, dtype)


def _build_image(config, folder: Path, seqlen: int, dtype: np.dtype) -> dict[str, Any]:
    if config.source == "archive":
        source = archive.require_folder(config.archive_dir, "cifar-10-batches-bin/ (CIFAR-10 binary version)")
        read = lambda split: archive.cifar_archive_split(source, split)
    else:
        read = lambda split: archive.cifar_hub_split(config.hub_path, split)
    truncated = lambda split: (([docs[0][:seqlen]], label) for docs, label in read(split))
    return _write_train_test(folder, truncated, config.val_fraction, config.split_seed, dtype)


def _write_train_test(folder: Path, read, val_fraction: float, seed: int, dtype) -> dict[str, Any]:
    """Write train and test; validation is carved from train, or is test (as in LRA) if the fraction is 0."""
    if val_fraction > 0:
        train, val = _carve(list(read("train")), val_fraction, seed)
        write_split(folder, "train", train, dtype, 1)
        write_split(folder, "val", val, dtype, 1)
        aliases = {}
    else:
        write_split(folder, "train", read("train"), dtype, 1)
        aliases = {"val": "test"}
    write_split(folder, "test", read("test"), dtype, 1)
    return {"aliases": aliases}


def _build_retrieval(config, folder: Path, seqlen: int, dtype: np.dtype) -> dict[str, Any]:
    source = archive.require_folder(config.archive_dir, "tsv_data/ of the lra_release archive")
    for split, name in (("train", "train"), ("val", "eval"), ("test", "test")):
        write_split(folder, split, archive.aan_split(source, name, seqlen), dtype, 2)
    return {}


def _build_pathfinder(config, folder: Path, seqlen: int, dtype: np.dtype) -> dict[str, Any]:
    writers = [SplitWriter(folder, split, dtype, 1) for split in ("train", "val", "test")]
    if config.source == "generate":
        count = config.num_examples
        examples: Iterable = generate_pathfinder(
            count, config.generation_seed, config.resolution, config.difficulty, config.workers
        )
        assignment = split_assignment(count, config.val_fraction, config.test_fraction, config.split_seed)
    else:
        what = f"lra_release/ or its pathfinder{config.resolution}/"
        release = pathfinder_release(config.archive_dir, config.resolution, config.difficulty)
        index = archive.pathfinder_index(
            release or archive.require_folder(config.archive_dir, what), config.difficulty
        )
        count = len(index)  # split by position in the metadata (S4's split); unreadable images are skipped
        examples = ((archive.read_pathfinder_image(path, config.resolution), label) for path, label in index)
        assignment = s4_split_assignment(count, config.val_fraction, config.test_fraction, config.split_seed)
    for position, (image, label) in enumerate(examples):
        if image is not None:
            writers[assignment[position]].add([image[:seqlen]], label)
    for writer in writers:
        writer.close()
    return {}


BUILDERS = {
    "lra_listops": _build_listops,
    "lra_text": _build_text,
    "lra_retrieval": _build_retrieval,
    "lra_image": _build_image,
    "lra_pathfinder": _build_pathfinder,
    "lra_pathx": _build_pathfinder,
}


def store_key(config, seqlen: int) -> dict[str, Any]:
    """What the encoded examples depend on."""
    key = {k: v for k, v in vars(config).items() if k not in LOAD_TIME_KEYS}
    key.update(format=FORMAT_VERSION, seqlen=seqlen)
    if config.kind in ("lra_pathfinder", "lra_pathx") and config.source == "archive":
        key["split"] = "s4"  # S4's random_split (data/lra/release.py) since the numpy split before it
    if config.kind in ("lra_pathfinder", "lra_pathx") and config.source == "generate":
        key["generator"] = PATHFINDER_GENERATOR_VERSION
    if config.source == "archive" and config.archive_dir:
        folder = Path(config.archive_dir).expanduser().resolve()
        key["archive"] = [str(folder), folder.stat().st_mtime_ns if folder.exists() else None]
    return key


def prepare_lra(config, seqlen: int) -> tuple[Path, dict[str, Any]]:
    """The store folder of ``config`` (built if missing) and its metadata."""
    task = LRA_TASKS[config.kind]
    key = fingerprint(store_key(config, seqlen), length=32)
    folder = cache_root(config.cache_dir) / "lra" / f"{config.kind}-{key[:16]}"

    def build(temporary: Path) -> None:
        started = time.time()
        log.info("building %s examples in %s", config.kind, folder)
        dtype = np.dtype(np.uint8 if task.vocab_size <= 256 else np.uint16)
        extra = BUILDERS[config.kind](config, temporary, seqlen, dtype)
        splits = {}
        for split in ("train", "val", "test"):
            if (temporary / f"{split}.labels.npy").is_file():
                splits[split] = len(np.load(temporary / f"{split}.labels.npy", allow_pickle=False))
        if not splits.get("train"):
            raise ValueError(f"{config.kind}: the training split is empty")
        meta = {"format": FORMAT_VERSION, "fingerprint": key, "task": config.kind, "dtype": dtype.name}
        meta.update(documents=task.num_documents, splits=splits, aliases=extra.get("aliases", {}))
        finish_store(temporary, {**meta, "build_seconds": round(time.time() - started, 2)})

    def is_valid(candidate: Path) -> bool:
        meta = candidate / META
        return meta.is_file() and read_json(meta).get("fingerprint") == key

    build_once(folder, is_valid, build, log.warning)
    return folder, read_json(folder / META)
