"""``python -m evaluation report RUN_DIR...``: one Markdown + HTML report comparing runs side by side.

Sections (each only when some run has its data): runs overview, loss curves (PNG), perplexity,
zero-shot downstream tasks beside the Mamba paper's rows, Long Range Arena beside the published
rows, synthetic tasks (induction-heads length generalization, with a PNG).
"""

from __future__ import annotations

from pathlib import Path

from ..results import write_text_atomic
from .document import Document, Heading, Image, Paragraph, Table
from .plots import plot_length_generalization, plot_loss_curves
from .runs import RunRecord, load_run
from .tables import downstream_table, fmt, lra_table, perplexity_table, synthetic_table


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


def _overview_table(runs: list[RunRecord]) -> Table:
    rows = []
    for run in runs:
        steps, losses = run.series("loss")
        _, val_losses = run.series("val_loss")
        _, speeds = run.series("tokens_per_s")
        last = run.metrics[-1] if run.metrics else {}
        tokens = last.get("tokens")
        rows.append(
            [
                run.name,
                run.model_summary(),
                fmt(int(steps[-1]) if steps else None),
                fmt(int(tokens) if isinstance(tokens, (int, float)) else None),
                fmt(losses[-1] if losses else None, 4),
                fmt(min(val_losses) if val_losses else None, 4),
                fmt(sum(speeds) / len(speeds) if speeds else None, 0),
            ]
        )
    header = ["run", "model", "steps", "tokens", "last train loss", "best val loss", "mean tokens/s"]
    return Table(header, rows)


def _perplexity_section(runs: list[RunRecord]) -> list:
    table = perplexity_table({run.name: run.results.get("perplexity", {}) for run in runs})
    return [Heading("Perplexity"), table] if table else []


def _downstream_section(runs: list[RunRecord]) -> list:
    table = downstream_table({run.name: run.results.get("harness", {}) for run in runs})
    return [Heading("Zero-shot downstream tasks (lm-eval)"), table] if table else []


def _lra_section(runs: list[RunRecord]) -> list:
    """One row per run (a run holds one task; a folder of several evaluated runs shows several)."""
    evaluated = [run for run in runs if run.results.get("lra")]
    if not evaluated:
        return []
    scores = {
        run.name: {task: e.get("accuracy") for task, e in run.results["lra"].items()} for run in evaluated
    }
    quick = {task for run in evaluated for task, entry in run.results["lra"].items() if entry.get("quick")}
    generated = {
        (run.name, task)
        for run in evaluated
        for task, entry in run.results["lra"].items()
        if entry.get("generated")
    }
    return [Heading("Long Range Arena"), lra_table(scores, quick, generated)]


def _synthetic_section(runs: list[RunRecord], out_dir: Path) -> list:
    blocks: list = []
    tasks = sorted({task for run in runs for task in run.results.get("synthetic", {})})
    for task in tasks:
        series = {}
        for run in runs:
            entry = run.results.get("synthetic", {}).get(task)
            if entry:
                series[run.name] = (list(entry["lengths"]), list(entry["accuracy"]))
        blocks += [Heading(f"Synthetic: {task}"), synthetic_table(series, task)]
        png = f"synthetic_{task}.png"
        if plot_length_generalization(series, f"{task}: accuracy vs test length", out_dir / png):
            blocks.append(Image(png, f"{task} accuracy against test length"))
    return blocks
