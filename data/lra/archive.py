"""Readers for Long Range Arena data as distributed, yielding encoded ``(documents, label)`` examples.

Layouts (``archive_dir`` points at the folder named first):

- ListOps: ``listops-1000/`` of the ``lra_release`` archive with ``basic_{train,val,test}.tsv``
  (header ``Source<TAB>Target``).
- Text: IMDB. Either ``aclImdb/`` (the Stanford tarball: ``{train,test}/{pos,neg}/*.txt``) or,
  with ``source: hub``, a Hub dataset / ``save_to_disk`` folder with ``text`` and ``label`` columns.
- Retrieval: ``tsv_data/`` of the archive with ``new_aan_pairs.{train,eval,test}.tsv`` (no header;
  columns label, id1, id2, text1, text2).
- Image: CIFAR-10. Either ``cifar-10-batches-bin/`` (``data_batch_{1..5}.bin``, ``test_batch.bin``:
  records of 1 label byte + 3072 RGB bytes) or, with ``source: hub``, a dataset with ``img`` and
  ``label`` columns. Converted to grayscale as LRA did.
- Pathfinder / Path-X: ``lra_release/`` or its ``pathfinder32/`` (or ``pathfinder128/``) with
  ``curv_baseline``, ``curv_contour_length_9`` and ``curv_contour_length_14``, each holding
  ``imgs/<n>/sample_<k>.png`` and ``metadata/<n>.npy``: text lines
  ``imgs/<n> sample_<k>.png <index> <label> ...``.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mamba_lm.data.lra import listops
from mamba_lm.data.lra.release import PATHFINDER_FOLDERS
from mamba_lm.data.lra.tasks import encode_bytes, rgb_to_gray

log = logging.getLogger(__name__)

Example = tuple[list[np.ndarray], int]
CIFAR_RECORD = 1 + 3 * 1024


def require_file(path: Path, layout: str) -> Path:
    """``path`` if it is a file, else FileNotFoundError naming it and the expected layout."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected {layout}")
    return path


def require_folder(folder: str | Path | None, what: str) -> Path:
    """``folder`` as a Path if it is a directory, else a clear error."""
    if folder is None:
        raise ValueError(f"data.archive_dir is required for {what} with source 'archive'")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data.archive_dir: {path} is not a folder (expected {what})")
    return path


def _csv_field_limit() -> None:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # LRA rows exceed csv's default 128 KiB field limit


def listops_split(folder: Path, split: str, max_length: int) -> Iterator[Example]:
    """Examples of ``basic_<split>.tsv``: tokens of the Source column, label = Target."""
    _csv_field_limit()
    path = require_file(folder / f"basic_{split}.tsv", "listops-1000/basic_{train,val,test}.tsv")
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or header[:2] != ["Source", "Target"]:
            raise ValueError(f"{path}: expected a 'Source<TAB>Target' header, got {header!r}")
        for line, row in enumerate(reader, start=2):
            if len(row) < 2:
                raise ValueError(f"{path}:{line}: expected 2 tab-separated columns, got {len(row)}")
            yield [listops.encode(row[0])[:max_length]], int(row[1])


def imdb_archive_split(folder: Path, split: str, max_length: int) -> Iterator[Example]:
    """Reviews of ``aclImdb/<split>/{neg,pos}/*.txt`` as bytes; label 1 = positive."""
    for label, polarity in ((0, "neg"), (1, "pos")):
        reviews = folder / split / polarity
        if not reviews.is_dir():
            raise FileNotFoundError(
                f"{reviews} does not exist; expected aclImdb/{{train,test}}/{{pos,neg}}/*.txt"
            )
        for path in sorted(reviews.glob("*.txt")):
            yield [encode_bytes(path.read_bytes(), max_length)], label


def hub_rows(path: str, split: str, columns: tuple[str, str]) -> Iterator[dict]:
    """Rows of a Hub dataset (or ``save_to_disk`` folder) ``path``'s ``split``, checking ``columns``."""
    import datasets

    local = Path(path).expanduser()
    if local.is_dir() and (
        (local / "dataset_dict.json").is_file() or (local / "dataset_info.json").is_file()
    ):
        dataset = datasets.load_from_disk(str(local))
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise ValueError(f"{path} has no split {split!r}; its splits are {sorted(dataset)}")
            dataset = dataset[split]
    else:
        dataset = datasets.load_dataset(path, split=split)
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"dataset {path} [{split}] lacks column(s) {missing}; its columns are {dataset.column_names}"
        )
    yield from dataset


def imdb_hub_split(path: str, split: str, max_length: int) -> Iterator[Example]:
    """IMDB reviews from a Hub-format dataset with ``text`` and ``label`` columns."""
    for row in hub_rows(path, split, ("text", "label")):
        yield [encode_bytes(row["text"], max_length)], int(row["label"])


def aan_split(folder: Path, split: str, max_length: int) -> Iterator[Example]:
    """Pairs of ``new_aan_pairs.<split>.tsv`` (split train, eval or test): both texts as bytes."""
    _csv_field_limit()
    path = require_file(folder / f"new_aan_pairs.{split}.tsv", "tsv_data/new_aan_pairs.{train,eval,test}.tsv")
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) != 5:
                raise ValueError(
                    f"{path}:{line}: expected 5 columns (label, id1, id2, text1, text2), got {len(row)}"
                )
            yield [encode_bytes(row[3], max_length), encode_bytes(row[4], max_length)], int(float(row[0]))


def cifar_archive_split(folder: Path, split: str) -> Iterator[Example]:
    """CIFAR-10 binary batches of ``split`` (train: data_batch_1..5, test: test_batch) in grayscale."""
    if (folder / "data_batch_1").is_file() and not (folder / "data_batch_1.bin").is_file():
        raise ValueError(
            f"{folder} holds the pickled Python version of CIFAR-10, which is not loaded (pickle); "
            "use the binary version (cifar-10-batches-bin) or source: hub"
        )
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    for name in names:
        data = require_file(
            folder / name, "cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin"
        ).read_bytes()
        if len(data) % CIFAR_RECORD:
            raise ValueError(f"{folder / name} has {len(data)} bytes, not a multiple of {CIFAR_RECORD}")
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
        gray = rgb_to_gray(records[:, 1:].reshape(-1, 3, 1024).transpose(0, 2, 1))
        for pixels, label in zip(gray, records[:, 0]):
            yield [pixels], int(label)


def cifar_hub_split(path: str, split: str) -> Iterator[Example]:
    """CIFAR-10 from a Hub-format dataset with ``img`` and ``label`` columns, in grayscale."""
    for row in hub_rows(path, split, ("img", "label")):
        yield [rgb_to_gray(np.asarray(row["img"].convert("RGB"))).reshape(-1)], int(row["label"])


def pathfinder_index(folder: Path, difficulty: str) -> list[tuple[Path, int]]:
    """(image path, label) of every example listed in ``<difficulty folder>/metadata/*.npy``."""
    root = folder / PATHFINDER_FOLDERS[difficulty]
    metadata = sorted((root / "metadata").glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
    if not metadata:
        raise FileNotFoundError(
            f"no metadata/*.npy under {root}; expected pathfinderN/{PATHFINDER_FOLDERS[difficulty]}/"
        )
    examples = []
    for file in metadata:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4:
                raise ValueError(f"{file}:{number}: expected 'imgs/<n> sample_<k>.png <index> <label> ...'")
            examples.append((root / fields[0] / fields[1], int(fields[3])))
    return examples


def read_pathfinder_image(path: Path, resolution: int) -> np.ndarray | None:
    """A Pathfinder PNG as uint8 pixels (resolution**2,), or None if unreadable (LRA has an empty file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError) as error:
        log.warning("skipping unreadable Pathfinder image %s (%s)", path, error)
        return None
    if pixels.shape != (resolution, resolution):
        raise ValueError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, expected {resolution}x{resolution}")
    return pixels.reshape(-1)
