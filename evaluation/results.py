"""Evaluation result files inside a run folder, written atomically.

Every command that evaluates a run keeps its results in ``RUN_DIR/eval/`` so that ``report`` finds
them later:

| file | written by | holds |
| --- | --- | --- |
| ``eval/perplexity.json`` | ``perplexity`` | ``{key: result}``; key = ``"<data>/<split>/<mode>"`` |
| ``eval/harness.json`` | ``harness`` | ``{task: {metric: value}}`` and ``"_meta"`` (limit, fewshot) |
| ``eval/lra.json`` | ``lra`` | ``{task: {"accuracy": %, "examples": n, "split": ...}}`` |
| ``eval/synthetic.json`` | ``synthetic`` | ``{task: {"lengths": [...], "accuracy": [...]}}`` |

A file is a JSON object; ``update_results`` merges new keys into it (a later evaluation of the
same key replaces the earlier one), through a temporary file and ``os.replace`` so that a crash
never leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

EVAL_DIR_NAME = "eval"
RESULT_FILES = ("perplexity", "harness", "lra", "synthetic")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically (temporary file, then rename).

    Non-finite floats are written as ``null`` so that the file stays strict JSON.
    """
    text = json.dumps(_finite_or_none(payload), indent=2, sort_keys=True, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a damaged file raises ``ValueError`` naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it or rerun the evaluation") from error


def result_path(run_dir: str | Path, kind: str) -> Path:
    """``RUN_DIR/eval/<kind>.json`` for one of ``RESULT_FILES``."""
    if kind not in RESULT_FILES:
        raise ValueError(f"unknown result kind {kind!r}; expected one of {', '.join(RESULT_FILES)}")
    return Path(run_dir) / EVAL_DIR_NAME / f"{kind}.json"


def load_results(run_dir: str | Path, kind: str) -> dict[str, Any]:
    """The results of one kind saved in a run folder, or ``{}`` when there are none yet."""
    path = result_path(run_dir, kind)
    if not path.exists():
        return {}
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} should hold a JSON object, found {type(payload).__name__}")
    return payload


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
    """The train.py run folder a run or checkpoint path belongs to (the nearest of the path, its parent
    and grandparent that holds metrics.jsonl), or None for checkpoints from elsewhere."""
    path = Path(path)
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / "metrics.jsonl").is_file():
            return candidate
    return None
