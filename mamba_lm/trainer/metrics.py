"""Where metrics go: RUN_DIR/metrics.jsonl, wandb (offline by default), a plain log line per record
(``step=10 train/loss=... eval/loss=...`` through ``logging``, progress bar or not) and a tqdm bar.

Only the main process logs. wandb is imported lazily, so the trainer runs where it is not
installed as long as ``logger.backend`` is ``none``. wandb settings left null in the config defer to
wandb's environment variables (WANDB_MODE, WANDB_PROJECT, WANDB_ENTITY, WANDB_NAME, WANDB_DIR).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import secrets
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write_json
from .config import LoggerBackend, LoggerConfig
from .run_folder import METRICS as METRICS_FILE
from .run_folder import RunFolder, read_metrics

__all__ = [
    "METRICS_FILE",
    "MetricsLogger",
    "format_postfix",
    "memory_gb",
    "metrics_line",
    "read_metrics",  # the run folder's one metrics reader, re-exported
    "wandb_init_settings",
]
DEFAULT_WANDB_MODE = "offline"
DEFAULT_WANDB_PROJECT = "mamba-lm"
logger = logging.getLogger(__name__)


def memory_gb(device: torch.device) -> float:
    """Peak memory so far in GB: CUDA's max allocated, or this process's peak resident size on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return peak_kb / 1e6


class MetricsLogger:
    """Writes each logged step to metrics.jsonl and wandb, and shows the progress bar."""

    def __init__(
        self,
        run_dir: Path,
        config: LoggerConfig,
        run_config: dict[str, Any],
        total_steps: int,
        start_step: int,
        progress_bar: bool,
    ) -> None:
        self.run_dir = Path(run_dir)
        folder = RunFolder(run_dir)
        self.path = folder.metrics_file
        folder.drop_metrics_after(start_step)
        self._file = open(self.path, "a")  # noqa: SIM115 (open for the whole run, closed in close())
        self._wandb_run = (
            self._start_wandb(config, run_config) if config.backend == LoggerBackend.wandb else None
        )
        self._bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, initial=start_step, desc="train", dynamic_ncols=True)

    def _start_wandb(self, config: LoggerConfig, run_config: dict[str, Any]):
        import wandb

        id_file = RunFolder(self.run_dir).wandb_id_file  # the same wandb run continues after a resume
        run_id = json.loads(id_file.read_text())["id"] if id_file.exists() else secrets.token_hex(6)
        atomic_write_json(id_file, {"id": run_id})
        return wandb.init(
            **wandb_init_settings(config, self.run_dir), config=run_config, id=run_id, resume="allow"
        )

    def log(self, record: dict[str, Any]) -> None:
        """Log one record (must contain ``step``)."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._wandb_run is not None:
            self._wandb_run.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])
        logger.info(metrics_line(record))
        if self._bar is not None:
            self._bar.set_postfix_str(format_postfix(record), refresh=False)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def message(self, text: str) -> None:
        """Print a line without breaking the progress bar."""
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        self._file.close()
        if self._bar is not None:
            self._bar.close()
        if self._wandb_run is not None:
            self._wandb_run.finish()


def wandb_init_settings(config: LoggerConfig, run_dir: Path) -> dict[str, Any]:
    """``wandb.init`` arguments: the config's values, where null the WANDB_* variables, then defaults."""
    environ = os.environ
    mode = config.mode.value if config.mode is not None else environ.get("WANDB_MODE") or DEFAULT_WANDB_MODE
    return {
        "project": config.project or environ.get("WANDB_PROJECT") or DEFAULT_WANDB_PROJECT,
        "entity": config.entity or environ.get("WANDB_ENTITY") or None,
        "name": config.name or environ.get("WANDB_NAME") or Path(run_dir).name,
        "tags": list(config.tags),
        "mode": mode,
        "dir": environ.get("WANDB_DIR") or str(run_dir),
    }


METRIC_LINE_KEYS = ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "memory_gb", "skipped_steps")


def metrics_line(record: dict[str, Any]) -> str:
    """One plain log line: ``step=N train/loss=... train/lr=... eval/loss=...`` (val_* keys are eval/*)."""
    parts = [f"step={record.get('step')}"]
    for key in METRIC_LINE_KEYS:
        if record.get(key) is not None:
            parts.append(f"train/{key}={_format_number(record[key])}")
    for key, value in record.items():
        if key.startswith("val_") and value is not None:
            parts.append(f"eval/{key.removeprefix('val_')}={_format_number(value)}")
    return " ".join(parts)


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_postfix(record: dict[str, Any]) -> str:
    """The progress bar's text: loss, lr, grad norm, tokens/s, MFU, memory (and val loss when present)."""
    parts = []
    for key, label, fmt in (
        ("loss", "loss", "{:.4f}"),
        ("val_loss", "val", "{:.4f}"),
        ("val_accuracy", "acc", "{:.3f}"),
        ("lr", "lr", "{:.2e}"),
        ("grad_norm", "gnorm", "{:.2f}"),
        ("tokens_per_s", "tok/s", "{:,.0f}"),
        ("mfu", "mfu", "{:.1%}"),
        ("memory_gb", "mem", "{:.1f}GB"),
    ):
        if record.get(key) is not None:
            parts.append(f"{label}={fmt.format(record[key])}")
    return " ".join(parts)
