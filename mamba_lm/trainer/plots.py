"""Loss and learning-rate curves from metrics.jsonl, as PNG (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_write_with
from .run_folder import read_metrics


def _save_atomic(figure, path: Path) -> None:
    atomic_write_with(path, lambda temporary: figure.savefig(temporary, dpi=120, format="png"))


def plot_training_curves(metrics_path: Path, out_dir: Path) -> list[Path]:
    """Write ``loss.png`` (train and validation loss against step) and ``lr.png`` into ``out_dir``.

    Returns the files written (none when metrics.jsonl has no loss records yet).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    lrs = [(r["step"], r["lr"]) for r in records if r.get("lr") is not None]
    if not train:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(*zip(*train), label="train loss", linewidth=1.2)
    if val:
        axes.plot(*zip(*val), "o-", label="validation loss", linewidth=1.2, markersize=4)
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats)")
    axes.set_title(f"Loss: {out_dir.parent.name}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    loss_path = out_dir / "loss.png"
    _save_atomic(figure, loss_path)
    plt.close(figure)
    written = [loss_path]

    if lrs:
        figure, axes = plt.subplots(figsize=(7, 3))
        axes.plot(*zip(*lrs), color="tab:green", linewidth=1.2)
        axes.set_xlabel("step")
        axes.set_ylabel("learning rate")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        lr_path = out_dir / "lr.png"
        _save_atomic(figure, lr_path)
        plt.close(figure)
        written.append(lr_path)
    return written
