"""Run lm-eval tasks on a checkpoint through the ``mamba_lm`` model and summarize the metrics.

``tasks`` are lm-eval task, group or tag names (``paper`` = the Mamba paper's zero-shot set), or
paths to task YAML files; ``include_path`` adds a folder of task YAMLs (local tasks on local data).
A name lm-eval does not know is an error; a known task whose data cannot be fetched (no network)
is skipped with a message, unless ``skip_unreachable=False``.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any

from . import LM_EVAL_MODEL_NAME, register_lm_eval_model
from .cli import EvaluationError
from .published import PAPER_TASK_METRICS

PAPER_TASKS_ALIAS = "paper"
logger = logging.getLogger(__name__)


def expand_task_names(tasks: list[str]) -> list[str]:
    """``paper`` becomes the six zero-shot tasks of the Mamba paper; duplicates are dropped."""
    expanded: list[str] = []
    for task in tasks:
        for name in list(PAPER_TASK_METRICS) if task == PAPER_TASKS_ALIAS else [task]:
            if name not in expanded:
                expanded.append(name)
    return expanded


def check_task_names(task_manager, tasks: list[str]) -> None:
    """Raise ``ValueError`` naming every task that is neither known to lm-eval nor a YAML file."""
    known = set(task_manager.all_tasks)
    unknown = [task for task in tasks if task not in known and not Path(task).is_file()]
    if unknown:
        hints = []
        for task in unknown:
            close = difflib.get_close_matches(task, known, n=3)
            hints.append(f"{task!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise ValueError(
            f"unknown lm-eval task(s): {'; '.join(hints)}. Use lm-eval task names, "
            f"'{PAPER_TASKS_ALIAS}', a task YAML path, or include_path=FOLDER for local task definitions"
        )


def loadable_tasks(
    task_manager, tasks: list[str], skip_unreachable: bool
) -> tuple[list[str], dict[str, str]]:
    """(tasks whose data loads, {task: reason} for those skipped). With ``skip_unreachable=False`` the
    first failure raises ``EvaluationError`` naming the task and the cause."""
    ready, skipped = [], {}
    for task in tasks:
        try:
            task_manager.load([task])
        except Exception as error:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ...)
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if not skip_unreachable:
                raise EvaluationError(f"lm-eval task {task!r} could not load its data ({reason})") from error
            skipped[task] = reason
            continue
        ready.append(task)
    return ready, skipped


def summarize(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` from lm-eval's results: "acc,none" -> "acc", another filter F ->
    "acc[F]"."""
    summary: dict[str, dict[str, float]] = {}
    for task, metrics in results.get("results", {}).items():
        entry = {}
        for key, value in metrics.items():
            if "," not in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            metric, _, filter_name = key.partition(",")
            entry[metric if filter_name == "none" else f"{metric}[{filter_name}]"] = float(value)
        summary[task] = entry
    return summary


def run_harness(
    checkpoint: str | Path | None,
    tasks: list[str],
    include_path: str | list[str] | None = None,
    num_fewshot: int | None = None,
    limit: float | None = None,
    model_args: dict[str, Any] | None = None,
    bootstrap_iters: int = 100_000,
    skip_unreachable: bool = True,
    include_defaults: bool = True,
    lm=None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Evaluate with ``lm_eval.simple_evaluate(model="mamba_lm", ...)``.

    Args:
        checkpoint: what ``MambaEvalLM`` loads (ignored when ``lm`` is given).
        model_args: further ``MambaEvalLM`` arguments (batch_size, device, dtype, max_length, tokenizer...).
        include_defaults: index lm-eval's own tasks too (False: only ``include_path``; much faster).
        lm: an already built ``MambaEvalLM`` (tests; evaluating several task sets on one model).
    Returns:
        (lm-eval's full results dict, {skipped task: reason}).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    register_lm_eval_model()
    if not include_defaults and not include_path:
        raise ValueError("include_defaults=false needs include_path=FOLDER (no task would be known)")
    task_manager = TaskManager(include_path=include_path, include_defaults=include_defaults)
    names = expand_task_names(tasks)
    if not names:
        raise ValueError(f"no task given: tasks=NAME[,NAME...] (or tasks={PAPER_TASKS_ALIAS})")
    check_task_names(task_manager, names)
    ready, skipped = loadable_tasks(task_manager, names, skip_unreachable)
    for task, reason in skipped.items():
        logger.warning("skipping lm-eval task %s: its data could not be loaded (%s)", task, reason)
    if not ready:
        raise EvaluationError(f"no requested task could load its data: {skipped}")
    model: Any = lm if lm is not None else LM_EVAL_MODEL_NAME
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=None if lm is not None else {"checkpoint": str(checkpoint), **(model_args or {})},
        tasks=ready,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=task_manager,
        bootstrap_iters=bootstrap_iters,
        log_samples=False,
    )
    if results is None:  # lm-eval returns None on ranks other than 0
        raise RuntimeError("lm-eval returned no results (not the main process?)")
    return results, skipped
