"""Read what a run folder holds for the report: its resolved config, metrics.jsonl and eval results,
through the run folder's own reader (``mamba_lm.trainer.RunFolder``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_lm.trainer import RunFolder, read_metrics

from ..results import RESULT_FILES, load_results

__all__ = ["RunRecord", "hydra_choices", "load_run", "read_metrics", "read_run_config"]


@dataclass
class RunRecord:
    """Everything the report shows about one run folder."""

    name: str
    """Display name: the folder's name (made unique by the caller when two folders share one)."""
    path: Path
    config: dict[str, Any]
    """The resolved config ({} when the folder has none)."""
    metrics: list[dict[str, Any]]
    """metrics.jsonl rows in file order (each has at least step, loss, lr, tokens_per_s)."""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """eval/<kind>.json contents by kind (perplexity, harness, lra, synthetic)."""

    def series(self, key: str, x_key: str = "step") -> tuple[list[float], list[float]]:
        """(x, y) of metric ``key`` against ``x_key`` ("step", "tokens") over the rows holding both
        (a finite y)."""
        xs, ys = [], []
        for row in self.metrics:
            x, y = row.get(x_key), row.get(key)
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(y):
                xs.append(float(x))
                ys.append(float(y))
        return xs, ys

    def model_summary(self) -> str:
        """A short description of the model, e.g. 'mamba_130m (mamba 24x768)' or 'classifier/s4d 6x256'."""
        model = self.config.get("model") or {}
        if not isinstance(model, dict) or not model:
            return "?"
        kind = str(model.get("arch", "model"))
        if kind == "mamba":
            kind = {"S4D": "s4d", "MambaS4D": "mamba-s4d"}.get(
                (model.get("ssm_cfg") or {}).get("layer"), kind
            )
        elif kind == "classifier":
            kind = f"classifier/{model.get('mixer', '?')}"
        if "n_layer" in model and "d_model" in model:
            kind += f" {model['n_layer']}x{model['d_model']}"
        choice = hydra_choices(self.path).get("model", "")
        return f"{choice} ({kind})" if choice and not choice.endswith("_schema") else kind


def load_run(path: str | Path) -> RunRecord:
    """Read one run folder; a path that is not a folder, or holds neither metrics nor eval results,
    raises ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"run folder {path} does not exist or is not a folder")
    folder = RunFolder(path)
    metrics = folder.read_metrics()
    results = {kind: load_results(path, kind) for kind in RESULT_FILES}
    results = {kind: value for kind, value in results.items() if value}
    if not metrics and not results:
        raise ValueError(
            f"{path} holds neither metrics.jsonl nor eval/*.json results: is it a run folder "
            "(the directory train.py wrote, hydra.run.dir)?"
        )
    return RunRecord(
        name=path.resolve().name, path=path, config=folder.read_config(), metrics=metrics, results=results
    )


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved config of a run as a plain dict ({} when it has none; ``RunFolder.read_config``)."""
    return RunFolder(run_dir).read_config()


def hydra_choices(run_dir: str | Path) -> dict[str, str]:
    """The config-group choices Hydra recorded for a run (``RunFolder.hydra_choices``)."""
    return RunFolder(run_dir).hydra_choices()
