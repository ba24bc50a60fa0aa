"""The training loop: ``Trainer(...).fit()``.

Read top to bottom: ``prepare`` (every check of a resume, then weights, optimizer, data position, RNG:
nothing in the run folder is written before it succeeds), then ``fit``, holding the run folder's lock
(``RunFolder.lock``), per step: set the lr,
draw ``grad_accum_steps`` micro-batches, ``TrainStep`` (forward, loss, backward, clip, update),
count non-finite steps, log, validate, checkpoint; a SIGTERM ends the loop after the current
step with a checkpoint (``fit`` returns; the training command then exits with status 143). The
loop knows the model only through ``forward`` and the data only through an iterator of batches
with ``state_dict()`` / ``load_state_dict()``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import (
    CheckpointError,
    find_checkpoint_to_resume,
    list_checkpoints,
    load_training_state,
    newer_valid_checkpoints,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from .config import BEST_METRICS, LoggerConfig, OptimConfig, TrainerConfig
from .flops import model_flops_per_token, peak_flops_per_device
from .graphed_step import GraphedTrainStep, check_cuda_graph_support
from .metrics import MetricsLogger, memory_gb
from .optim import LRSchedule, build_optimizer
from .plots import plot_training_curves
from .profiling import PROFILE_FILE, StepProfiler
from .rng import capture_rng_state, restore_rng_state
from .run_folder import RunFolder, is_step_folder, step_of
from .runtime import set_fp32_matmul_precision
from .signals import StopRequest
from .state_io import tied_parameter_aliases
from .step import TrainStep, evaluate

VALIDATION_METRICS = {"lm": ("val_loss", "val_ppl"), "classification": ("val_loss", "val_accuracy")}
"""What ``evaluate`` reports for each task (``trainer.keep_best`` must be one of them)."""


def check_keep_best(metric: str | None, task: str) -> None:
    """Raise ValueError when ``trainer.keep_best`` names a metric the task's validation does not report."""
    reported = VALIDATION_METRICS.get(task, ())
    if metric is not None and metric not in reported:
        raise ValueError(
            f"trainer.keep_best={metric} is not reported by a {task} run's validation (it reports "
            f"{', '.join(reported)}): choose one of those, or null"
        )


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps with a NaN/inf loss or gradient norm."""


def nonfinite_state(model: nn.Module, limit: int = 8) -> list[str]:
    """Names of the model's parameters and buffers that hold a NaN or an infinity (at most ``limit``)."""
    names = []
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            names.append(name)
            if len(names) == limit:
                break
    return names


def nonfinite_validation_message(step: int, model: nn.Module) -> str:
    """The warning for a non-finite validation loss while training goes on: where the model's state broke.

    Training keeps finite losses while a BatchNorm's running statistics overflow: the batch statistics
    rescale whatever the layer before it outputs, the running ones (used in evaluation) do not."""
    broken = nonfinite_state(model)
    where = (
        f"non-finite values in {', '.join(broken)}"
        if broken
        else "every parameter and buffer is finite (the overflow happens in the forward pass)"
    )
    hint = (
        " (BatchNorm running statistics: activations before a BatchNorm grew without bound in training; "
        "a lower lr or a pre-norm block keeps them in range)"
        if any(name.endswith(("running_var", "running_mean")) for name in broken)
        else ""
    )
    return f"warning: the validation loss at step {step} is not finite: {where}{hint}"


@dataclass
class FitSummary:
    """What ``Trainer.fit`` did."""

    step: int
    """Optimizer steps done (including those of the run resumed from)."""
    stopped_by_signal: str | None
    """Name of the signal that ended the run early (SIGTERM/SIGINT), or None."""
    checkpoint: Path | None
    """The last checkpoint written (or resumed from when nothing was left to do)."""
    skipped_steps: int
    """Steps whose update was skipped (non-finite values or fp16 overflow)."""
    last_metrics: dict[str, Any] = field(default_factory=dict)
    """The last logged record (with val_* keys if the final evaluation ran)."""


@dataclass
class _Progress:
    """Counters saved in checkpoints (trainer_state.json)."""

    step: int = 0
    tokens_seen: int = 0
    skipped_steps: int = 0
    nonfinite_in_a_row: int = 0
    best_step: int | None = None
    """The step of the best validation so far by ``trainer.keep_best`` (its checkpoint is kept)."""
    best_value: float | None = None
    best_metric: str | None = None
    """The metric best_value is of (a resumed run that follows another one starts its best afresh)."""


@dataclass
class _Window:
    """Averages since the last log record."""

    loss_sum: float = 0.0
    grad_norm_sum: float = 0.0
    finite_steps: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)


class Trainer:
    """Trains ``model`` on ``train_loader`` under ``accelerator`` and writes everything into ``run_dir``.

    Args:
        accelerator: an ``accelerate.Accelerator`` (see ``make_accelerator``).
        model: the unwrapped model; ``forward(input_ids, ...)`` returns logits (see ``step.py``).
        train_loader: infinite iterable of batches with ``state_dict()``/``load_state_dict()``.
        run_dir: the run folder (checkpoints/, metrics.jsonl, plots/, wandb/).
        run_config: the resolved run config as a plain dict, stored in each checkpoint.
        optim, trainer, logger: the config sections.
        task: "lm" or "classification".
        val_loader: ``val_loader(batch_size)`` returns a fresh finite iterable, or None.
        seqlen: training sequence length (for the FLOPs count / MFU).
        resume: "auto", a checkpoint or run folder path, or None (see ``RunConfig.resume``).
    """

    def __init__(
        self,
        *,
        accelerator,
        model: nn.Module,
        train_loader,
        run_dir: str | Path,
        run_config: dict[str, Any],
        optim: OptimConfig,
        trainer: TrainerConfig,
        logger: LoggerConfig,
        task: str = "lm",
        val_loader: Callable[[int], Iterable[dict[str, torch.Tensor]]] | None = None,
        seqlen: int | None = None,
        resume: str | None = "auto",
    ) -> None:
        self.accelerator = accelerator
        self.unwrapped_model = model
        self.train_loader = train_loader
        self.run_dir = Path(run_dir)
        self.run_config = run_config
        self.optim_config = optim
        self.config = trainer
        self.logger_config = logger
        self.task = task
        self.val_loader = val_loader
        self.seqlen = seqlen
        self.resume = resume
        self.run_folder = RunFolder(run_dir)
        self._resumed_from: Path | None = None
        self._prepared = False

    # ----------------------------------------------------------------------------------- setup
    def _checkpoint_to_resume(self) -> Path | None:
        if self.resume is None or str(self.resume).lower() in ("none", "null", "never"):
            if list_checkpoints(self.run_dir):
                raise FileExistsError(
                    f"run folder {self.run_dir} already has checkpoints and resume is null: pass resume=auto "
                    "to continue that run, or choose another folder (hydra.run.dir=...)"
                )
            return None
        if self.resume == "auto":
            return find_checkpoint_to_resume(self.run_dir)
        checkpoint = resolve_checkpoint(self.resume)
        step = step_of(checkpoint) if is_step_folder(checkpoint) else None
        newer = newer_valid_checkpoints(self.run_dir, step) if step is not None else []
        if newer:
            raise CheckpointError(
                f"run folder {self.run_dir} has checkpoints newer than resume={self.resume} "
                f"({', '.join(folder.name for folder in newer)}); this run would reach their steps and meet "
                "them: resume=auto continues from the newest, or train in another folder (hydra.run.dir=...)"
            )
        return checkpoint

    def _restore(self, checkpoint: Path, model, optimizer, progress: _Progress) -> None:
        configured = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        trainer_state, rank_state = load_training_state(
            checkpoint, model, optimizer.optimizer, self.accelerator
        )
        for group, hyperparameters in zip(optimizer.param_groups, configured):
            group.update(hyperparameters)  # the config's lr/decay win over the checkpoint's
        for key, default in asdict(progress).items():
            optional = key.startswith("best_")  # absent from checkpoints written before keep_best
            setattr(progress, key, trainer_state.get(key, default) if optional else trainer_state[key])
        try:
            self.train_loader.load_state_dict(rank_state["data"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(
                f"checkpoint {checkpoint} was saved by a run on other data ({error}): resume it with the "
                "data config it was trained with, or train in another folder (hydra.run.dir=...)"
            ) from error
        restore_rng_state(rank_state["rng"])
        if self.accelerator.scaler is not None and trainer_state.get("grad_scaler"):
            self.accelerator.scaler.load_state_dict(trainer_state["grad_scaler"])

    def _save(self) -> Path:
        trainer_state = asdict(self.progress)
        trainer_state["lr"] = self.schedule.lr(max(0, self.progress.step - 1))
        if self.accelerator.scaler is not None:
            trainer_state["grad_scaler"] = self.accelerator.scaler.state_dict()
        rank_state = {"data": self.train_loader.state_dict(), "rng": capture_rng_state()}
        path = save_checkpoint(
            self.run_dir,
            self.progress.step,
            self.model,
            self.optimizer.optimizer,
            trainer_state,
            rank_state,
            self.run_config,
            self.accelerator,
            self.tied_aliases,
        )
        if self.accelerator.is_main_process:
            keep = self.progress.best_step if self.config.keep_best else None
            prune_checkpoints(self.run_dir, self.config.keep_last, self.progress.step, keep)
        return path

    def prepare(self) -> Path | None:
        """Optimizer, accelerate wrapping, schedule, and the state of the checkpoint resumed from.

        Every check of a resume (a valid checkpoint, the same model, data and number of processes) runs
        here, and nothing in the run folder is written: a refused resume leaves it as it was. Returns the
        checkpoint resumed from (None for a fresh start). Call it under ``run_folder.lock()`` when files
        are written after it; ``fit`` prepares (under the lock) when nobody did.
        """
        cfg, accelerator = self.config, self.accelerator
        if cfg.cuda_graph:
            check_cuda_graph_support(accelerator, cfg.grad_accum_steps, cfg.compile)
        check_keep_best(cfg.keep_best, self.task)
        checkpoint = self._checkpoint_to_resume()
        set_fp32_matmul_precision(cfg.tf32)
        self.tied_aliases = tied_parameter_aliases(self.unwrapped_model)
        model, seqlen = self.unwrapped_model, self.seqlen
        self.flops_per_token = model_flops_per_token(model, seqlen) if seqlen else None
        self.peak_flops = peak_flops_per_device(accelerator.device, cfg.peak_flops)
        optimizer = build_optimizer(self.unwrapped_model, self.optim_config)
        self.model, self.optimizer = accelerator.prepare(self.unwrapped_model, optimizer)
        self.schedule = LRSchedule.from_config(self.optim_config, cfg.max_steps)
        self.progress = _Progress()
        if checkpoint is not None:
            self._restore(checkpoint, self.model, self.optimizer, self.progress)
        self.forward_model = torch.compile(self.model) if cfg.compile else self.model
        self._resumed_from, self._prepared = checkpoint, True
        return checkpoint

    def _open_log(self) -> None:
        """The metrics log (main process): drops records logged after the checkpoint resumed from."""
        cfg, checkpoint = self.config, self._resumed_from
        self.log = None
        if self.accelerator.is_main_process:
            self.log = MetricsLogger(
                self.run_dir,
                self.logger_config,
                self.run_config,
                cfg.max_steps,
                self.progress.step,
                cfg.progress_bar,
            )
            if checkpoint is not None:
                self.log.message(f"resumed from {checkpoint} at step {self.progress.step}")

    # ------------------------------------------------------------------------------------- fit
    def fit(self) -> FitSummary:
        """Train up to ``trainer.max_steps`` holding the run folder's lock; returns a summary.

        Raises RunFolderBusy when another run holds the folder, NonFiniteLossError (see config).
        """
        with self.run_folder.lock(self.accelerator):
            if not self._prepared:
                self.prepare()
            self._open_log()
            return self._train()

    def _train(self) -> FitSummary:
        cfg = self.config
        last_checkpoint = self._resumed_from
        progress = self.progress
        step_class = GraphedTrainStep if cfg.cuda_graph else TrainStep
        train_step = step_class(
            self.accelerator, self.forward_model, self.optimizer, self.task, self.optim_config.grad_clip
        )
        batches = iter(self.train_loader)
        window, record, stopped = _Window(), {}, None
        profiler = None
        if cfg.profile_steps and self.accelerator.is_main_process:
            on_cuda = self.accelerator.device.type == "cuda"
            profiler = StepProfiler(cfg.profile_steps, self.run_dir / PROFILE_FILE, on_cuda)
        try:
            with StopRequest() as stop:
                while progress.step < cfg.max_steps and not stopped:
                    lr = self.schedule.apply(self.optimizer, progress.step)
                    if profiler is not None:
                        profiler.before_step()
                    result = train_step([next(batches) for _ in range(cfg.grad_accum_steps)], stop.requested)
                    if profiler is not None and (written := profiler.after_step()):
                        self.log.message(f"profile of {cfg.profile_steps} steps written to {written}")
                    self._count(result, window, last_checkpoint)
                    if result.stop_requested:
                        stopped = stop.signal_name or "a signal on another process"
                    final = progress.step == cfg.max_steps or stopped
                    # On a stop signal the grace period is short: save at once, validate later.
                    periodic_eval = cfg.eval_every and progress.step % cfg.eval_every == 0
                    evaluate_now = not stopped and (final or periodic_eval)
                    best = False
                    if final or evaluate_now or progress.step % cfg.log_every == 0:
                        record = self._log(window, lr, evaluate_now)
                        best = evaluate_now and self._is_new_best(record)
                        window = _Window()
                    periodic = cfg.save_every and progress.step % cfg.save_every == 0
                    if final or best or (periodic and not progress.nonfinite_in_a_row):  # not amid NaNs
                        last_checkpoint = self._save()
                        window.started = time.perf_counter()  # keep checkpoint time out of tokens/s
            if stopped and self.log is not None:
                self.log.message(f"stopped by {stopped} at step {progress.step}; saved {last_checkpoint}")
        finally:
            if profiler is not None and (written := profiler.close()):
                self.log.message(f"profile cut short by the run's end, written to {written}")
            if self.log is not None:
                self.log.close()
        if self.accelerator.is_main_process and cfg.plots:
            plot_training_curves(self.run_folder.metrics_file, self.run_folder.plots_dir)
        self.accelerator.wait_for_everyone()
        return FitSummary(progress.step, stopped, last_checkpoint, progress.skipped_steps, record)

    def _count(self, result, window: _Window, last_checkpoint: Path | None) -> None:
        """Advance the counters after a step; stop the run after too many non-finite steps in a row."""
        progress = self.progress
        progress.step += 1
        progress.tokens_seen += result.tokens
        progress.skipped_steps += int(result.skipped)
        progress.nonfinite_in_a_row = progress.nonfinite_in_a_row + 1 if result.nonfinite else 0
        self._stop_if_diverged(progress, result, last_checkpoint)
        if not result.nonfinite:
            window.loss_sum += result.loss
            window.grad_norm_sum += result.grad_norm
            window.finite_steps += 1
        window.tokens += result.tokens
        if self.log is not None:
            self.log.advance()

    def _log(self, window: _Window, lr: float, evaluate_now: bool) -> dict[str, Any]:
        """The record of this step (validation metrics too when due), written by the main process."""
        record = self._record(self.progress, window, lr, self.flops_per_token, self.peak_flops)
        if evaluate_now and self.val_loader is not None:
            batch_size = self.config.eval_batch_size or self.config.micro_batch_size
            batches = self.val_loader(batch_size)
            record.update(
                evaluate(self.forward_model, batches, self.task, self.accelerator, self.config.eval_batches)
            )
        if self.log is not None:
            self.log.log(record)
            val_loss = record.get("val_loss")
            if val_loss is not None and not math.isfinite(val_loss):
                self.log.message(nonfinite_validation_message(self.progress.step, self.unwrapped_model))
        return record

    def _is_new_best(self, record: dict[str, Any]) -> bool:
        """Whether this step's validation is the best so far by ``trainer.keep_best`` (then it becomes the
        best: the caller saves this step, and pruning keeps that checkpoint)."""
        metric, progress = self.config.keep_best, self.progress
        value = record.get(metric) if metric else None
        if value is None or not math.isfinite(value):
            return False
        better = BEST_METRICS[metric]
        known = progress.best_value is not None and progress.best_metric == metric
        if known and better(value, progress.best_value) == progress.best_value:
            return False  # not better (a tie keeps the earlier checkpoint)
        progress.best_step, progress.best_value, progress.best_metric = progress.step, float(value), metric
        return True

    def _stop_if_diverged(self, progress: _Progress, result, last_checkpoint: Path | None) -> None:
        limit = self.config.max_nonfinite_steps
        if progress.nonfinite_in_a_row >= limit:
            raise NonFiniteLossError(
                f"stopping at step {progress.step}: {progress.nonfinite_in_a_row} consecutive steps had a "
                f"non-finite loss or gradient norm (last loss {result.loss}, grad norm {result.grad_norm}; "
                f"trainer.max_nonfinite_steps={limit}). The last good checkpoint {last_checkpoint} is "
                "intact; lower optim.lr or check the data."
            )

    def _record(
        self,
        progress: _Progress,
        window: _Window,
        lr: float,
        flops_per_token: float | None,
        peak: float | None,
    ) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - window.started, 1e-9)
        tokens_per_s = window.tokens / elapsed
        finite = window.finite_steps
        record = {
            "step": progress.step,
            "loss": window.loss_sum / finite if finite else None,
            "lr": lr,
            "grad_norm": window.grad_norm_sum / finite if finite else None,
            "tokens_per_s": tokens_per_s,
            "tokens": progress.tokens_seen,
            "skipped_steps": progress.skipped_steps,
            "memory_gb": memory_gb(self.accelerator.device),
        }
        if flops_per_token is not None and peak is not None:
            record["mfu"] = tokens_per_s * flops_per_token / (peak * self.accelerator.num_processes)
        return record
