"""The report's figures as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from .runs import RunRecord  # noqa: E402


def plot_loss_curves(runs: list[RunRecord], path: Path) -> bool:
    """Training loss (solid) and validation loss (dashed, markers) against step for every run, on one
    figure. Returns False (and writes nothing) when no run has a loss to plot."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plotted = False
    for index, run in enumerate(runs):
        color = f"C{index % 10}"
        steps, losses = run.series("loss")
        if steps:
            ax.plot(steps, losses, color=color, linewidth=1.2, label=f"{run.name} train")
            plotted = True
        val_steps, val_losses = run.series("val_loss")
        if val_steps:
            ax.plot(val_steps, val_losses, "--o", color=color, markersize=3, label=f"{run.name} val")
            plotted = True
    if plotted:
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title("Loss curves")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return plotted


def plot_length_generalization(
    series: dict[str, tuple[list[int], list[float]]], title: str, path: Path
) -> bool:
    """Accuracy (%) against test length (log2 axis), one line per run; False when there is no data."""
    if not any(lengths for lengths, _ in series.values()):
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for index, (name, (lengths, accuracy)) in enumerate(series.items()):
        if lengths:
            ax.plot(lengths, accuracy, "-o", color=f"C{index % 10}", markersize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("test sequence length")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
