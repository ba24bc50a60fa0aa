"""Where the lra_release archive's ListOps rows and Pathfinder / Path-X images are; S4's split of the images.

``archive_dir`` may point at the extracted ``lra_release`` folder (holding ``pathfinder32/``,
``pathfinder128/``, ...) or at one ``pathfinder<R>/`` folder itself; either holds a folder per difficulty
(``curv_contour_length_14/`` for hard) with ``metadata/*.npy`` and ``imgs/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PATHFINDER_FOLDERS = {
    "easy": "curv_baseline",
    "intermediate": "curv_contour_length_9",
    "hard": "curv_contour_length_14",
}


def pathfinder_release(archive_dir: str | Path | None, resolution: int, difficulty: str) -> Path | None:
    """The ``pathfinder<resolution>/`` folder under (or at) ``archive_dir`` that holds ``difficulty``'s
    metadata, or None when there is none (no archive_dir, or the images are not there)."""
    if archive_dir is None:
        return None
    root = Path(archive_dir).expanduser()
    for folder in (root / f"pathfinder{resolution}", root):
        if any((folder / PATHFINDER_FOLDERS[difficulty] / "metadata").glob("*.npy")):
            return folder
    return None


def listops_release(archive_dir: str | Path | None) -> Path | None:
    """The ``listops-1000/`` folder (holding ``basic_train.tsv``) under or at ``archive_dir``, or None."""
    if archive_dir is None:
        return None
    root = Path(archive_dir).expanduser()
    for folder in (root / "listops-1000", root):
        if (folder / "basic_train.tsv").is_file():
            return folder
    return None


def s4_split_assignment(count: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split of each of ``count`` examples (0 train, 1 val, 2 test) exactly as S4's Pathfinder loader draws it
    (state-spaces/s4, src/dataloaders/lra.py: ``torch.utils.data.random_split`` into lengths
    [count - val - test, val, test] with val = int(val_fraction * count), test = int(test_fraction * count)
    and ``torch.Generator().manual_seed(seed)``), so a run's test set is S4's."""
    import torch

    val, test = int(val_fraction * count), int(test_fraction * count)
    train = count - val - test
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).numpy()
    assignment = np.zeros(count, dtype=np.int8)
    assignment[order[train : train + val]] = 1
    assignment[order[train + val :]] = 2
    return assignment
