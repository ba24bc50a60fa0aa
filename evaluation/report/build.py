"""``python -m evaluation report RUN_DIR...``: one Markdown + HTML report comparing runs side by side.

Sections (each only when some run has its data): runs overview, loss curves (PNG), perplexity,
zero-shot downstream tasks beside the Mamba paper's rows, Long Range Arena beside the published
rows, synthetic tasks (induction-heads length generalization, with a PNG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..published import (
    DOWNSTREAM_PUBLISHED,
    LAMBADA_PPL_PUBLISHED,
    LRA_PUBLISHED,
    LRA_TASK_TITLES,
    LRA_TASKS,
    PAPER_TASK_METRICS,
    lra_average,
)
from ..results import write_text_atomic
from ..synthetic import length_label
from .document import Document, Heading, Image, Paragraph, Table
from .plots import plot_length_generalization, plot_loss_curves
from .runs import RunRecord, load_run


def build_report(run_dirs: list[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and their PNGs into ``out_dir``; return the two paths.

    Raises ``ValueError`` when no run folder is given or one of them cannot be read.
    """
    if not run_dirs:
        raise ValueError("report needs at least one run folder: python -m evaluation report RUN_DIR...")
    runs = _unique_names([load_run(path) for path in run_dirs])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    doc = Document()
    doc.add(Heading("Training and evaluation report", level=1))
    doc.add(Paragraph("Runs: " + ", ".join(f"{run.name} ({run.path})" for run in runs)))
    doc.add(Heading("Runs"), _overview_table(runs))
    if plot_loss_curves(runs, out_dir / "loss_curves.png"):
        doc.add(Heading("Loss curves"), Image("loss_curves.png", "training and validation loss per step"))
    for section in (_perplexity_section, _downstream_section, _lra_section):
        doc.add(*section(runs))
    doc.add(*_synthetic_section(runs, out_dir))

    markdown_path = write_text_atomic(out_dir / "report.md", doc.to_markdown())
    html_path = write_text_atomic(out_dir / "report.html", doc.to_html("Training and evaluation report"))
    return markdown_path, html_path


def _unique_names(runs: list[RunRecord]) -> list[RunRecord]:
    """Two folders with the same name (e.g. outputs/a/run and outputs/b/run) get their parent prefixed."""
    names = [run.name for run in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.name = f"{run.path.resolve().parent.name}/{run.name}"
    return runs


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _overview_table(runs: list[RunRecord]) -> Table:
    rows = []
    for run in runs:
        steps, losses = run.series("loss")
        _, val_losses = run.series("val_loss")
        _, speeds = run.series("tokens_per_s")
        last = run.metrics[-1] if run.metrics else {}
        tokens = last.get("tokens") or last.get("tokens_seen")
        rows.append(
            [
                run.name,
                run.model_summary(),
                _fmt(int(steps[-1]) if steps else None),
                _fmt(int(tokens) if isinstance(tokens, (int, float)) else None),
                _fmt(losses[-1] if losses else None, 4),
                _fmt(min(val_losses) if val_losses else None, 4),
                _fmt(sum(speeds) / len(speeds) if speeds else None, 0),
            ]
        )
    header = ["run", "model", "steps", "tokens", "last train loss", "best val loss", "mean tokens/s"]
    return Table(header, rows)


def _perplexity_section(runs: list[RunRecord]) -> list:
    keys = sorted({key for run in runs for key in run.results.get("perplexity", {})})
    if not keys:
        return []
    rows = []
    for run in runs:
        results = run.results.get("perplexity", {})
        rows.append([run.name] + [_fmt((results.get(key) or {}).get("perplexity")) for key in keys])
    caption = (
        "Perplexity = exp(mean next-token loss), per data config / split / mode "
        "(python -m evaluation perplexity)."
    )
    return [Heading("Perplexity"), Table(["run"] + keys, rows, caption)]


def _percent(value: Any) -> float | None:
    return 100.0 * value if isinstance(value, (int, float)) else None


def _downstream_section(runs: list[RunRecord]) -> list:
    evaluated = [run for run in runs if run.results.get("harness")]
    if not evaluated:
        return []
    found = {task for run in evaluated for task in run.results["harness"] if not task.startswith("_")}
    paper_tasks = [task for task in PAPER_TASK_METRICS if task in found]
    other_tasks = sorted(found - set(PAPER_TASK_METRICS))
    header = ["model"]
    if "lambada_openai" in found:
        header.append("lambada_openai ppl")
    header += [f"{task} {PAPER_TASK_METRICS[task]}" for task in paper_tasks]
    header += [f"{task} {metric}" for task in other_tasks for metric in _metric_names(evaluated, task)]
    header.append("avg (paper tasks)")

    rows = []
    for run in evaluated:
        tasks = run.results["harness"]
        row = [run.name]
        if "lambada_openai" in found:
            row.append(_fmt((tasks.get("lambada_openai") or {}).get("perplexity")))
        scores = [_percent((tasks.get(task) or {}).get(PAPER_TASK_METRICS[task])) for task in paper_tasks]
        row += [_fmt(score, 1) for score in scores]
        for task in other_tasks:
            for metric in _metric_names(evaluated, task):
                value = (tasks.get(task) or {}).get(metric)
                row.append(_fmt(_percent(value) if metric.startswith("acc") else value, 1))
        complete = paper_tasks and all(score is not None for score in scores)
        row.append(_fmt(sum(scores) / len(scores), 1) if complete else "–")
        rows.append(row)
    for name, published in DOWNSTREAM_PUBLISHED.items():
        row = [f"{name} (paper)"]
        if "lambada_openai" in found:
            row.append(_fmt(LAMBADA_PPL_PUBLISHED.get(name)))
        scores = [published[task] for task in paper_tasks]
        row += [_fmt(score, 1) for score in scores]
        row += ["–"] * (len(header) - len(row) - 1)
        row.append(_fmt(sum(scores) / len(scores), 1) if paper_tasks else "–")
        rows.append(row)
    caption = (
        "Accuracy in % (acc_norm for HellaSwag and ARC-Challenge, as in the Mamba paper); paper rows: "
        "300B Pile tokens. The average is over the paper tasks present in this table."
    )
    limits = {run.results["harness"].get("_meta", {}).get("limit") for run in evaluated} - {None}
    if limits:
        caption += f" Evaluated on a subset (limit {', '.join(map(str, sorted(limits)))} examples per task)."
    return [Heading("Zero-shot downstream tasks (lm-eval)"), Table(header, rows, caption)]


def _metric_names(runs: list[RunRecord], task: str) -> list[str]:
    names = set()
    for run in runs:
        for metric, value in (run.results["harness"].get(task) or {}).items():
            if isinstance(value, (int, float)) and not metric.endswith("_stderr"):
                names.add(metric)
    return sorted(names)


def _lra_section(runs: list[RunRecord]) -> list:
    evaluated = [run for run in runs if run.results.get("lra")]
    if not evaluated:
        return []
    header = ["model"] + [LRA_TASK_TITLES[task] for task in LRA_TASKS] + ["avg"]
    rows = []
    for run in evaluated:
        scores = {
            task: entry.get("accuracy") for task, entry in run.results["lra"].items() if task in LRA_TASKS
        }
        rows.append([run.name] + [_fmt(scores.get(task)) for task in LRA_TASKS] + [_fmt(lra_average(scores))])
    for name, scores in LRA_PUBLISHED.items():
        cells = ["fail" if scores[task] is None else _fmt(scores[task]) for task in LRA_TASKS]
        rows.append([f"{name} (published)", *cells, _fmt(lra_average(scores))])
    caption = "Test accuracy in %; – = not run; the average needs all six tasks (a failure counts as 50%)."
    quick = sorted({t for run in evaluated for t, e in run.results["lra"].items() if e.get("quick")})
    if quick:
        caption += (
            f" Quick mode (tiny data, few steps; not comparable to published numbers): {', '.join(quick)}."
        )
    return [Heading("Long Range Arena"), Table(header, rows, caption)]


def _synthetic_section(runs: list[RunRecord], out_dir: Path) -> list:
    blocks: list = []
    tasks = sorted({task for run in runs for task in run.results.get("synthetic", {})})
    for task in tasks:
        series = {}
        for run in runs:
            entry = run.results.get("synthetic", {}).get(task)
            if entry:
                series[run.name] = (list(entry["lengths"]), list(entry["accuracy"]))
        lengths = sorted({length for lens, _ in series.values() for length in lens})
        rows = []
        for name, (lens, accuracy) in series.items():
            by_length = dict(zip(lens, accuracy))
            rows.append([name] + [_fmt(_float(by_length.get(length)), 1) for length in lengths])
        header = ["run"] + [length_label(length) for length in lengths]
        blocks += [
            Heading(f"Synthetic: {task}"),
            Table(header, rows, "Accuracy in % per test sequence length."),
        ]
        png = f"synthetic_{task}.png"
        if plot_length_generalization(series, f"{task}: accuracy vs test length", out_dir / png):
            blocks.append(Image(png, f"{task} accuracy against test length"))
    return blocks


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
