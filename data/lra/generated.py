"""Locally generated LRA data (ListOps rows, Pathfinder images), produced in parallel processes.

Work is cut into chunks with seeds derived from (seed, chunk) or (seed, example index), so the
result does not depend on the number of workers.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from mamba_lm.data.lra import listops
from mamba_lm.data.lra.pathfinder import generate_image, style_for

LISTOPS_CHUNK = 1000
PATHFINDER_CHUNK = 500


def derived_seed(*entropy: int) -> int:
    """A 32-bit seed derived from integers (stable across processes and platforms)."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def parallel_map(function: Callable[[Any], Any], jobs: Sequence[Any], workers: int | None) -> Iterator[Any]:
    """``map(function, jobs)`` in order, in up to ``workers`` processes (None = all cores; 1 = here)."""
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers <= 1:
        yield from map(function, jobs)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(function, jobs)


def _listops_chunk(job: tuple[int, int, dict]) -> list[tuple[str, int]]:
    seed, count, options = job
    return listops.generate(count, seed=seed, **options)


def generate_listops_rows(
    total: int, seed: int, workers: int | None, **options: int
) -> list[tuple[str, int]]:
    """``total`` distinct ListOps rows (source, label), generated in chunks of LISTOPS_CHUNK."""
    rows: dict[str, int] = {}
    chunk = 0
    while len(rows) < total:
        remaining = total - len(rows)
        sizes = [min(LISTOPS_CHUNK, remaining - start) for start in range(0, remaining, LISTOPS_CHUNK)]
        jobs = [(derived_seed(seed, chunk + i), size, options) for i, size in enumerate(sizes)]
        for result in parallel_map(_listops_chunk, jobs, workers):
            for source, label in result:
                rows.setdefault(source, label)
        chunk += len(sizes)
    return list(rows.items())[:total]


def _pathfinder_chunk(job: tuple[int, int, int, int, str]) -> tuple[np.ndarray, np.ndarray]:
    seed, start, count, resolution, difficulty = job
    style = style_for(resolution, difficulty)
    images, labels = (
        np.zeros((count, resolution * resolution), dtype=np.uint8),
        np.zeros(count, dtype=np.int64),
    )
    for offset in range(count):
        image, labels[offset], _ = generate_image(np.random.default_rng([seed, start + offset]), style)
        images[offset] = image.reshape(-1)
    return images, labels


def generate_pathfinder(
    total: int, seed: int, resolution: int, difficulty: str, workers: int | None
) -> Iterator[tuple[np.ndarray, int]]:
    """Images (uint8 (resolution**2,)) and labels of examples 0..total-1, in index order."""
    jobs = [
        (seed, start, min(PATHFINDER_CHUNK, total - start), resolution, difficulty)
        for start in range(0, total, PATHFINDER_CHUNK)
    ]
    for images, labels in parallel_map(_pathfinder_chunk, jobs, workers):
        yield from zip(images, labels.tolist())
