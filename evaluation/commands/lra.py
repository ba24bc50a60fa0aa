"""``python -m evaluation lra RUN_DIR...`` / ``python -m evaluation lra quick=true [tasks=listops]``.

Evaluates Long Range Arena classifier runs (one per task, trained with ``experiment=lra/<task>``)
and prints accuracy per task and the average beside the published Transformer and S4 rows.
``quick=true`` first trains tiny classifiers (``experiment=lra/quick/<task>``: a few hundred short
examples, a few dozen steps) into ``out/<task>`` through train.py, then evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mamba_lm.trainer import best_checkpoint, list_checkpoints

from ..cli import UsageError, option
from ..loading import resolve_device, resolve_dtype
from ..lra import evaluate_lra_run, quick_tasks, quick_train
from ..report.tables import lra_table


@dataclass
class Options:
    quick: bool = option(
        False, help="train tiny classifiers (experiment=lra/quick/<task>) first, then evaluate them"
    )
    tasks: list[str] = option([], help="quick mode: tasks to train (default: every task with a quick config)")
    mixer: str | None = option(None, help="quick mode: classifier mixer, s4d (default) | mamba | attention")
    out: str = option("outputs/lra_quick", help="quick mode: folder that receives one run folder per task")
    best: bool = option(
        True,
        help="also evaluate a run folder's best-validation checkpoint (trainer.keep_best) when it is not "
        "its newest; both are kept in eval/lra.json",
    )
    split: str = option("test", help="test (validation when a task has no test split) | val")
    batch_size: int = option(32, help="examples per forward pass")
    max_batches: int | None = option(None, help="evaluate at most this many batches per task")
    device: str | None = option(None, help="cpu | cuda | cuda:N (default: cuda when available)")
    dtype: str = option(
        "auto", help="autocast dtype: auto (the one each run trained in) | float32 | bfloat16 | float16"
    )
    overrides: dict = option(
        {}, help="quick mode: KEY=VALUE Hydra overrides for train.py; else data.KEY=VALUE"
    )


def run(options: Options, positional: list[str]) -> int:
    device = resolve_device(options.device)
    dtype = "auto" if options.dtype.lower() == "auto" else resolve_dtype(options.dtype, device)
    run_dirs = [Path(p) for p in positional]
    data_overrides = options.overrides
    if options.quick:
        tasks = options.tasks or quick_tasks()
        train_overrides = [f"{key}={value}" for key, value in options.overrides.items()]
        if options.mixer:
            train_overrides.append(f"model.mixer={options.mixer}")
            if options.mixer == "attention":  # no SSM parameters for the lr rule to match
                train_overrides.append("optim.param_groups=[]")
        for task in tasks:
            run_dir = Path(options.out) / task
            print(f"training quick LRA {task} -> {run_dir}", flush=True)
            run_dirs.append(quick_train(task, run_dir, train_overrides))
        data_overrides = {}
    elif options.tasks or options.mixer:
        raise UsageError(
            "tasks= and mixer= choose what quick=true trains; to evaluate runs, list their folders"
        )
    if not run_dirs:
        raise UsageError("lra needs run folders (python -m evaluation lra RUN_DIR...) or quick=true")

    rows: dict[str, dict[str, float | None]] = {}
    quick: set[str] = set()
    generated: set[tuple[str, str]] = set()
    for run_dir in run_dirs:
        best = best_other_than_newest(run_dir) if options.best else None
        if best is not None:
            _, entry = evaluate_lra_run(
                best, options.split, options.batch_size, options.max_batches, device, dtype, data_overrides
            )
            print(f"best validation checkpoint {best}: {entry['accuracy']:.2f}% of {entry['examples']}")
        task, entry = evaluate_lra_run(
            run_dir, options.split, options.batch_size, options.max_batches, device, dtype, data_overrides
        )
        name = str(entry.get("model") or "run")
        rows.setdefault(name, {})[task] = entry["accuracy"]
        if entry["quick"]:
            quick.add(task)
        if entry.get("generated"):
            generated.add((name, task))
        print(
            f"{task}: {entry['accuracy']:.2f}% of {entry['examples']} {entry['split']} examples ({run_dir})"
        )
    print()
    print(lra_table(rows, quick, generated).to_markdown())
    return 0


def best_other_than_newest(run_dir: Path) -> Path | None:
    """A run folder's best-validation checkpoint (``trainer.keep_best``) when it is not the newest one
    (which ``evaluate_lra_run`` evaluates for the folder); None for a checkpoint folder or a run without
    one."""
    best = best_checkpoint(run_dir)  # None for a checkpoint folder: it holds no checkpoints/
    return best if best is not None and best != list_checkpoints(run_dir)[0] else None
