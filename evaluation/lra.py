"""Long Range Arena evaluation: test accuracy of classifier runs, printed beside the published rows.

A run trained with ``python train.py experiment=lra/<task>`` is evaluated on its own data config's
test split (validation when the task has none); the task is read from the run's ``data.kind``.
``quick_train`` trains tiny versions (``experiment=lra/quick/<task>``) through the same ``train.py``
for CI and smoke tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from .classification import classification_accuracy
from .cli import EvaluationError
from .data_configs import CONFIGS_DIR, build_eval_datamodule
from .loading import load_for_eval, resolve_dtype
from .published import LRA_TASKS
from .report.runs import hydra_choices
from .results import checkpoint_evaluations, earlier_evaluations, load_results, run_folder_of, update_results

REPO_ROOT = CONFIGS_DIR.parent
TRAIN_MODULE = "mamba_lm.trainer.app"
"""train.py's code (also in an installed package, which has no train.py)."""
QUICK_EXPERIMENTS_DIR = CONFIGS_DIR / "experiment" / "lra" / "quick"


def lra_task_of(run_config: dict[str, Any], source: str | Path) -> str:
    """The LRA task ("listops", ...) a run was trained on, from its data config's ``kind``."""
    kind = str((run_config.get("data") or {}).get("kind", ""))
    task = kind.removeprefix("lra_")
    if not kind.startswith("lra_") or task not in LRA_TASKS:
        raise ValueError(
            f"{source} was trained on data kind {kind!r}, not a Long Range Arena task "
            f"({', '.join('lra_' + t for t in LRA_TASKS)})"
        )
    return task


def training_dtype(run_config: dict[str, Any], device: torch.device) -> torch.dtype:
    """The compute dtype a run trained in (``trainer.precision``), for evaluating it the same way: fp32 for
    an fp32 run (S4's LRA runs train and test in fp32), else bf16 / fp16 autocast where the device supports
    it (``resolve_dtype("auto")``: fp32 on the CPU)."""
    precision = str((run_config.get("trainer") or {}).get("precision", "auto"))
    if precision == "fp32" or device.type != "cuda":
        return torch.float32
    return torch.float16 if precision == "fp16" else resolve_dtype("auto", device)


def evaluate_lra_run(
    run_dir: str | Path,
    split: str = "test",
    batch_size: int = 32,
    max_batches: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str | None = None,
    overrides: dict[str, str] | None = None,
    save: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Accuracy of one classifier run on its task; saved in RUN_DIR/eval/lra.json when ``save``.

    ``dtype``: the autocast dtype (None: fp32), or "auto": the one the run trained in (``training_dtype``).
    Returns (task, {"accuracy": %, "examples", "split", "model" (the mixer), "experiment", "data",
    "source", "generated", "quick", "step", "dtype"}); ``quick`` marks runs of a quick experiment or data
    config (tiny data, few steps); ``generated`` marks Pathfinder / Path-X evaluated on locally generated
    images (a different task from LRA's released images; ``source`` is the data config's resolved source);
    ``step`` is the evaluated checkpoint's. The file keeps one evaluation per checkpoint: the newest
    checkpoint's on top, the others (the best validation's, ``trainer.keep_best``) in its ``earlier``.
    ``split="test"`` falls back to validation for a task without a test split.
    """
    loaded = load_for_eval(run_dir, device, require_tokenizer=False, expect="classifier")
    if dtype == "auto":
        dtype = training_dtype(loaded.run_config, torch.device(device))
    task = lra_task_of(loaded.run_config, run_dir)
    _, datamodule = build_eval_datamodule(None, loaded.run_config, overrides or {})
    if datamodule.task != "classification":
        raise ValueError(f"{run_dir}: its data config is a {datamodule.task} task, not classification")
    if split == "test" and datamodule.has_test:
        loader, used_split = datamodule.test_loader(batch_size), "test"
    elif split in ("test", "val"):
        loader, used_split = datamodule.val_loader(batch_size), "val"
    else:
        raise ValueError(f"split must be test or val, got {split!r}")
    result = classification_accuracy(loaded.model, loader, max_batches, dtype)
    run_folder = run_folder_of(run_dir) or Path(run_dir)
    choices = hydra_choices(run_folder)
    model_config = loaded.run_config.get("model") or {}
    entry = {
        "accuracy": result.accuracy,
        "examples": result.examples,
        "split": used_split,
        "model": model_config.get("mixer") or model_config.get("arch"),
        "experiment": choices.get("experiment"),
        "data": choices.get("data"),
        "source": datamodule.config.source,
        "generated": task in ("pathfinder", "pathx") and datamodule.config.source == "generate",
        "quick": "quick" in choices.get("experiment", "") + choices.get("data", ""),
        "step": loaded.step,
        "dtype": str(dtype or torch.float32).removeprefix("torch."),
    }
    if save:
        previous = load_results(run_folder, "lra").get(task)
        *earlier, newest = checkpoint_evaluations(
            {**entry, "earlier": earlier_evaluations(previous, loaded.step)}
        )
        update_results(run_folder, "lra", {task: {**newest, "earlier": earlier}})
    return task, entry


def quick_tasks() -> list[str]:
    """Tasks that have a quick experiment config (configs/experiment/lra/quick/<task>.yaml)."""
    return sorted(path.stem for path in QUICK_EXPERIMENTS_DIR.glob("*.yaml"))


def quick_train(
    task: str, run_dir: Path, extra_overrides: list[str] | None = None, timeout_s: float = 900
) -> Path:
    """Train a tiny classifier with ``python train.py experiment=lra/quick/<task>`` into ``run_dir``.

    Runs train.py in a subprocess (the real entry point, Hydra included) on the CPU and raises
    ``EvaluationError`` with the tail of its output when it fails.
    """
    if task not in quick_tasks():
        raise ValueError(f"no quick experiment for LRA task {task!r}; available: {', '.join(quick_tasks())}")
    command = [
        sys.executable,
        "-m",
        TRAIN_MODULE,
        f"experiment=lra/quick/{task}",
        f"hydra.run.dir={run_dir}",
        *(extra_overrides or []),
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=timeout_s
    )
    if completed.returncode != 0:
        tail = (completed.stdout + completed.stderr)[-3000:]
        raise EvaluationError(f"quick LRA training for {task} failed ({' '.join(command)}):\n{tail}")
    return run_dir
