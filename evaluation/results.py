"""Evaluation result files inside a run folder, written atomically.

Every command that evaluates a run keeps its results in ``RUN_DIR/eval/`` so that ``report`` finds
them later:

| file | written by | holds |
| --- | --- | --- |
| ``eval/perplexity.json`` | ``perplexity`` | ``{key: result}``; key = ``"<data>/<split>/<mode>"`` |
| ``eval/harness.json`` | ``harness`` | ``{task: {metric: value}}`` and ``"_meta"`` (limit, fewshot) |
| ``eval/lra.json`` | ``lra`` | ``{task: {"accuracy": %, "split", "step", "earlier": [...], ...}}`` |
| ``eval/synthetic.json`` | ``synthetic`` | ``{task: {"lengths", "accuracy", "step", "earlier": [...]}}`` |

A file is a JSON object; ``update_results`` merges new keys into it (a later evaluation of the
same key replaces the earlier one), written atomically (``mamba_lm.files``) so that a crash never
leaves half a file. Where the files lie is the run folder's (``mamba_lm.trainer.RunFolder``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mamba_lm.files import atomic_write_json
from mamba_lm.files import atomic_write_text as write_text_atomic  # noqa: F401 (the report writes with it)
from mamba_lm.trainer import RESULT_KINDS, RunFolder, find_run_folder

RESULT_FILES = RESULT_KINDS


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically (temporary file, then rename).

    Non-finite floats are written as ``null`` so that the file stays strict JSON.
    """
    return atomic_write_json(path, _finite_or_none(payload), sort_keys=True)


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a damaged file raises ``ValueError`` naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it or rerun the evaluation") from error


def result_path(run_dir: str | Path, kind: str) -> Path:
    """``RUN_DIR/eval/<kind>.json`` for one of ``RESULT_FILES``."""
    return RunFolder(run_dir).result_file(kind)


def load_results(run_dir: str | Path, kind: str) -> dict[str, Any]:
    """The results of one kind saved in a run folder, or ``{}`` when there are none yet."""
    path = result_path(run_dir, kind)
    if not path.exists():
        return {}
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} should hold a JSON object, found {type(payload).__name__}")
    return payload


def checkpoint_evaluations(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A synthetic or LRA result's evaluations, one per checkpoint: the entry itself and its ``earlier`` ones,
    each without ``earlier``, by checkpoint step (one without a recorded step, from an older file, counts
    as the oldest); of two with the same step the entry itself wins."""
    if not entry:
        return []
    entries = [*entry.get("earlier", []), entry]
    by_step = {e.get("step"): {k: v for k, v in e.items() if k != "earlier"} for e in entries}
    return sorted(by_step.values(), key=lambda e: -1 if e.get("step") is None else e["step"])


def earlier_evaluations(previous: dict | None, step: int | None) -> list[dict]:
    """The evaluations to keep beside a new one of checkpoint ``step``: the previous entry's (its own and
    its ``earlier`` ones) of other steps, oldest first. A run evaluated in pieces so keeps every
    checkpoint's result (a constant-lr run's accuracy can move between them; an LRA run's last and
    best-validation checkpoints are both evaluated)."""
    return [entry for entry in checkpoint_evaluations(previous) if entry.get("step") != step]


def update_results(run_dir: str | Path, kind: str, entries: dict[str, Any]) -> Path:
    """Merge ``entries`` into ``RUN_DIR/eval/<kind>.json`` (same keys replaced) and return its path."""
    merged = load_results(run_dir, kind)
    merged.update(entries)
    return write_json_atomic(result_path(run_dir, kind), merged)


def _finite_or_none(value: Any) -> Any:
    """Replace NaN/inf floats (anywhere in nested lists/dicts) by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def run_folder_of(path: str | Path) -> Path | None:
    """The train.py run folder a run or checkpoint path belongs to (``find_run_folder``), or None for
    checkpoints from elsewhere."""
    folder = find_run_folder(path)
    return folder.path if folder is not None else None
