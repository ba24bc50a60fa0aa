"""The report's figures as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from .runs import RunRecord  # noqa: E402


def plot_loss_curves(runs: list[RunRecord], path: Path) -> bool:
    """Training loss (solid) and validation loss (dashed, markers) of every run on one figure, against
    step and, when the runs log ``tokens``, against tokens seen (to compare models at equal tokens).
    Returns False (and writes nothing) when no run has a loss to plot."""
    if not any(run.series("loss")[0] or run.series("val_loss")[0] for run in runs):
        return False
    by_tokens = all(run.series("tokens")[0] for run in runs)
    fig, axes = plt.subplots(1, 2 if by_tokens else 1, figsize=(13 if by_tokens else 8, 4.5), squeeze=False)
    for ax, x_key in zip(axes[0], ("step", "tokens")):
        for index, run in enumerate(runs):
            color = f"C{index % 10}"
            for key, style in (("loss", "-"), ("val_loss", "--o")):
                xs, ys = run.series(key, x_key)
                if xs:
                    ax.plot(
                        xs, ys, style, color=color, linewidth=1.2, markersize=3, label=f"{run.name} {key}"
                    )
        ax.set_xlabel(x_key)
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(f"Loss against {x_key}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
    return True


def plot_length_generalization(
    series: dict[str, tuple[list[int], list[float]]], title: str, path: Path
) -> bool:
    """Accuracy (%) against test length (log2 axis), one line per run; False when there is no data."""
    return _plot_accuracy(series, {}, "test sequence length", title, path, log2_x=True)


def plot_loss_against_flops(
    curves: dict[tuple[str, str], tuple[list[float], list[float]]],
    path: Path,
    final_points: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> bool:
    """Validation loss against training FLOPs, one line per (family, size): Mamba blue, Transformer++ red,
    line style by size (s dotted, m dashed, l solid); ``final_points`` (a run's final FLOPs and loss, its
    curve not kept) as hollow markers. False when there is nothing to plot."""
    final_points = final_points or {}
    if not curves and not final_points:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    color = {"mamba": "C0", "transformer": "C3"}
    for (family, size), (flops, losses) in sorted(curves.items()):
        style = {"s": ":", "m": "--", "l": "-"}[size]
        ax.plot(flops, losses, style, color=color[family], marker="o", markersize=3, label=f"{family} {size}")
    for (family, size), (flops, loss) in sorted(final_points.items()):
        label = f"{family} {size} (final only)"
        ax.plot([flops], [loss], "D", color=color[family], markerfacecolor="none", markersize=7, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Mamba (blue) vs Transformer++ (red) on the code corpus")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def plot_accuracy_curves(
    series: dict[str, tuple[list[float], list[float]]], references: dict[str, float], title: str, path: Path
) -> bool:
    """Accuracy (%) against training step, one line per run, and a dotted horizontal line per published
    reference number. False when there is no data."""
    return _plot_accuracy(series, references, "training step", title, path)


def _plot_accuracy(
    series: dict[str, tuple[list[float], list[float]]],
    references: dict[str, float],
    xlabel: str,
    title: str,
    path: Path,
    log2_x: bool = False,
) -> bool:
    """Accuracy (%) against ``xlabel``, one line per run (log2 x axis and a 0-100 y range with ``log2_x``),
    a dotted horizontal line per reference; False when no run has data."""
    if not any(xs for xs, _ in series.values()):
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for index, (name, (xs, accuracy)) in enumerate(series.items()):
        if xs:
            ax.plot(xs, accuracy, "-o", color=f"C{index % 10}", markersize=3, label=name)
    for index, (label, value) in enumerate(references.items()):
        ax.axhline(value, linestyle=":", color=f"C{(len(series) + index) % 10}", label=label)
    if log2_x:
        ax.set_xscale("log", base=2)
        ax.set_ylim(-2, 102)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _save(fig, path: Path) -> None:
    """Write the figure as PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
