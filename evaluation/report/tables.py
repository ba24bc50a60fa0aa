"""Result tables shared by the report and the commands' printed summaries.

Each builder takes plain results keyed by a display name (a run, a model) exactly as the commands
save them in RUN_DIR/eval/*.json, and returns a ``Table`` (rendered as Markdown or HTML), with the
published rows beside ours where the papers give them.
"""

from __future__ import annotations

from typing import Any

from ..published import (
    DOWNSTREAM_PUBLISHED,
    INDUCTION_HEADS_PUBLISHED,
    LAMBADA_PPL_PUBLISHED,
    LRA_GENERATED_NOTE,
    LRA_PUBLISHED,
    LRA_TASK_TITLES,
    LRA_TASKS,
    PAPER_TASK_METRICS,
    SELECTIVE_COPYING_COMPARISON,
    SELECTIVE_COPYING_PUBLISHED,
    lra_average,
)
from .document import Table


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: "–" for missing, thousands separators for ints, ``digits`` decimals for floats."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def length_label(length: int) -> str:
    """'2^k' for a power of two, else the number."""
    exponent = length.bit_length() - 1
    return f"2^{exponent}" if length == 1 << exponent else str(length)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _percent(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else 100.0 * number


def perplexity_table(results: dict[str, dict[str, dict[str, Any]]]) -> Table | None:
    """Rows: names; columns: the "<data>/<split>/<mode>" keys of eval/perplexity.json."""
    keys = sorted({key for entries in results.values() for key in entries})
    if not keys:
        return None
    rows = [
        [name] + [fmt((entries.get(key) or {}).get("perplexity")) for key in keys]
        for name, entries in results.items()
    ]
    caption = "Perplexity = exp(mean next-token loss) per data config / split / mode."
    return Table(["run"] + keys, rows, caption)


def downstream_table(results: dict[str, dict[str, Any]]) -> Table | None:
    """lm-eval summaries (``{task: {metric: value}}``, accuracies as fractions) beside the Mamba
    paper's rows: LAMBADA perplexity, the paper's metric per paper task (acc; acc_norm for HellaSwag
    and ARC-Challenge) and their average, then every other task's metrics."""
    results = {name: tasks for name, tasks in results.items() if tasks}
    found = {task for tasks in results.values() for task in tasks if not task.startswith("_")}
    if not found:
        return None
    paper_tasks = [task for task in PAPER_TASK_METRICS if task in found]
    other_metrics = [
        (task, metric)
        for task in sorted(found - set(PAPER_TASK_METRICS))
        for metric in _metrics(results, task)
    ]
    lambada_ppl = "lambada_openai" in found
    header = ["model"] + (["lambada_openai ppl"] if lambada_ppl else [])
    header += [f"{task} {PAPER_TASK_METRICS[task]}" for task in paper_tasks]
    header += [f"{task} {metric}" for task, metric in other_metrics] + ["avg (paper tasks)"]

    rows = []
    for name, tasks in results.items():
        scores = [_percent((tasks.get(task) or {}).get(PAPER_TASK_METRICS[task])) for task in paper_tasks]
        row = [name] + (
            [fmt(_number((tasks.get("lambada_openai") or {}).get("perplexity")))] if lambada_ppl else []
        )
        row += [fmt(score, 1) for score in scores]
        for task, metric in other_metrics:
            value = (tasks.get(task) or {}).get(metric)
            row.append(fmt(_percent(value) if metric.startswith("acc") else _number(value), 1))
        complete = bool(paper_tasks) and all(score is not None for score in scores)
        rows.append(row + [fmt(sum(scores) / len(scores), 1) if complete else "–"])
    for name, published in DOWNSTREAM_PUBLISHED.items():
        scores = [published[task] for task in paper_tasks]
        row = [f"{name} (paper)"] + ([fmt(LAMBADA_PPL_PUBLISHED.get(name))] if lambada_ppl else [])
        row += [fmt(score, 1) for score in scores] + ["–"] * len(other_metrics)
        rows.append(row + [fmt(sum(scores) / len(scores), 1) if paper_tasks else "–"])
    caption = (
        "Accuracy in % (acc_norm for HellaSwag and ARC-Challenge, as in the Mamba paper); paper rows: "
        "300B Pile tokens. The average is over the paper tasks present in this table."
    )
    limits = {(tasks.get("_meta") or {}).get("limit") for tasks in results.values()} - {None}
    if limits:
        caption += f" Evaluated on a subset (limit {', '.join(map(str, sorted(limits)))} examples per task)."
    return Table(header, rows, caption)


def _metrics(results: dict[str, dict[str, Any]], task: str) -> list[str]:
    names = set()
    for tasks in results.values():
        for metric, value in (tasks.get(task) or {}).items():
            if _number(value) is not None and not metric.endswith("_stderr"):
                names.add(metric)
    return sorted(names)


def lra_table(
    scores: dict[str, dict[str, float | None]],
    quick_tasks: set[str] = frozenset(),
    generated: set[tuple[str, str]] = frozenset(),
) -> Table:
    """Accuracy (%) per LRA task and the average, our rows (name -> {task: accuracy}) then the
    published Transformer, S4 and S4D rows. ``generated``: (name, task) cells measured on locally
    generated Pathfinder / Path-X images, labelled so and left out of that row's average."""
    header = ["model"] + [LRA_TASK_TITLES[task] for task in LRA_TASKS] + ["avg"]
    rows = []
    for name, by_task in scores.items():
        cells = [
            fmt(by_task.get(task)) + (" (generated)" if (name, task) in generated else "")
            for task in LRA_TASKS
        ]
        comparable = not any((name, task) in generated for task in by_task)
        rows.append([name, *cells, fmt(lra_average(by_task)) if comparable else "–"])
    for name, published in LRA_PUBLISHED.items():
        cells = ["fail" if published[task] is None else fmt(published[task]) for task in LRA_TASKS]
        rows.append([f"{name} (published)", *cells, fmt(lra_average(published))])
    caption = "Test accuracy in %; – = not run; the average needs all six tasks (a failure counts as 50%)."
    if generated:
        caption += f" {LRA_GENERATED_NOTE[0].upper()}{LRA_GENERATED_NOTE[1:]}."
    if quick_tasks:
        tasks = ", ".join(sorted(quick_tasks))
        caption += f" Quick mode (tiny data, few steps; not comparable to published numbers): {tasks}."
    return Table(header, rows, caption)


def synthetic_table(series: dict[str, tuple[list[int], list[float]]], task: str | None = None) -> Table:
    """Accuracy (%) per test length, one row per name (``name -> (lengths, accuracies)``), then the Mamba
    paper's rows for ``task``: Table 11 for "induction_heads" (at our lengths; "oom" where the paper's
    attention models ran out of memory), Table 1's comparison rows for "selective_copying"."""
    lengths = sorted({length for lens, _ in series.values() for length in lens})
    rows = []
    for name, (lens, accuracy) in series.items():
        by_length = dict(zip(lens, accuracy))
        rows.append([name] + [fmt(_number(by_length.get(length)), 1) for length in lengths])
    caption = "Accuracy in % per test sequence length."
    if task == "induction_heads":
        for name, published in INDUCTION_HEADS_PUBLISHED.items():
            by_exponent = published["accuracy"]
            cells = [_published_induction_cell(by_exponent, length) for length in lengths]
            rows.append([f"{name}, {published['params']} (paper, Table 11)", *cells])
        caption += (
            " Paper rows: trained at 2^8; attention tested only up to 2^14 (oom beyond), "
            "D = 128 and 8 heads; Mamba D = 64."
        )
    elif task == "selective_copying":
        for (architecture, layer), accuracy in SELECTIVE_COPYING_PUBLISHED.items():
            if (architecture, layer) in SELECTIVE_COPYING_COMPARISON.values():
                label = f"{architecture} / {layer} (paper, Table 1)"
                rows.append([label] + [fmt(accuracy, 1) if length == 4096 else "–" for length in lengths])
        caption += (
            " Our S4D mixer is an SSM layer without gating: it compares with Table 1's 'No gate / S4' "
            "(18.3); the Mamba block holding an S4D layer (MambaS4D) with 'Mamba / S4' (56.4)."
        )
    return Table(["run"] + [length_label(length) for length in lengths], rows, caption)


def _published_induction_cell(by_exponent: dict, length: int) -> str:
    exponent = length.bit_length() - 1
    if length != 1 << exponent or not 6 <= exponent <= 20:
        return "–"
    value = by_exponent.get(exponent)
    return "oom" if value is None else fmt(float(value), 1)
