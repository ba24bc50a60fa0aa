"""The training step replayed from CUDA graphs (``trainer.cuda_graph=true``), for launch-bound small models.

A 2-layer D = 64 Mamba on 8 x 256 tokens issues a few hundred small kernels per step and runs at the CPU's
launch rate (~70 steps/s on an H200), far from the GPU's. ``GraphedTrainStep`` captures the step and
replays it, so one launch per graph replaces hundreds. It does what ``TrainStep`` does, in two graphs:

1. forward, loss, backward and gradient clipping of one micro-batch, writing the loss and the gradient norm
   into a static tensor; one such graph per batch shape (see below);
2. the optimizer step, replayed only when that loss and norm are finite (``TrainStep`` skips such steps the
   same way). It is captured once: every forward/backward graph zeroes and fills the same gradient
   buffers, allocated before the first capture.

Each step reads the loss and the norm back (one synchronisation, as ``TrainStep`` does). The learning rate
of each parameter group lives in a device tensor refreshed from ``group["lr"]`` before each replay, so any
schedule works. The first ``WARMUP_STEPS`` steps run eagerly on a side stream (they create the optimizer
state and run the kernels' autotuning, which a capture must not do).

Batch shapes: a shape is captured the first time it comes after having run eagerly once (in the warm-up,
or as its first sighting after it: its kernels tune, its FFT plans are built), and from then on replayed.
At most ``max_graphs`` shapes are captured (each holds its own activation memory); batches of further
shapes run eagerly, with a warning once. LRA batches padded to a multiple (``data.pad_multiple``) recur in
a few shapes.

Requirements, checked by ``check_cuda_graph_support``: a CUDA device, one process, no gradient
accumulation, fp32 (no autocast, no loss scaler), no torch.compile. The model must not synchronise with the
host inside its forward/backward: its input checks skip themselves during a capture, and the step runs the
model's ``check_input_ids`` (when it has one) on each batch before the replay instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .step import StepResult, TrainStep, forward_loss

WARMUP_STEPS = 3
MAX_GRAPHS = 8


def check_cuda_graph_support(accelerator, grad_accum_steps: int, compile_model: bool) -> None:
    """Raise ValueError naming the setting that rules out ``trainer.cuda_graph=true``."""
    problems = []
    if accelerator.device.type != "cuda":
        problems.append(f"it needs a CUDA device (this run is on {accelerator.device.type})")
    if accelerator.num_processes != 1:
        problems.append(f"it runs one process (this run has {accelerator.num_processes})")
    if grad_accum_steps != 1:
        problems.append(f"it needs trainer.grad_accum_steps=1 (got {grad_accum_steps})")
    if str(accelerator.mixed_precision) != "no":
        problems.append(
            f"it needs trainer.precision=fp32 (this run autocasts to {accelerator.mixed_precision})"
        )
    if compile_model:
        problems.append("it replaces trainer.compile=true (set one of them)")
    if problems:
        raise ValueError("trainer.cuda_graph=true cannot be used here: " + "; ".join(problems))


def _signature(batch: dict[str, torch.Tensor]) -> tuple:
    return tuple(
        sorted((k, tuple(v.shape), v.dtype) for k, v in batch.items() if isinstance(v, torch.Tensor))
    )


@dataclass
class _ShapeGraph:
    """The forward/backward graph of one batch shape: its static inputs and its (loss, norm) output."""

    graph: torch.cuda.CUDAGraph
    static_batch: dict[str, torch.Tensor]
    static_out: torch.Tensor  # (2,): loss, gradient norm


class GraphedTrainStep:
    """``TrainStep``'s contract (same call, same ``StepResult``), replayed from CUDA graphs."""

    def __init__(
        self,
        accelerator,
        model: nn.Module,
        optimizer,
        task: str = "lm",
        grad_clip: float = 1.0,
        max_graphs: int = MAX_GRAPHS,
    ):
        self.accelerator = accelerator
        self.model = model
        self.task = task
        self.max_norm = grad_clip if grad_clip > 0 else math.inf
        self.max_graphs = max_graphs
        self.eager = TrainStep(accelerator, model, optimizer, task, grad_clip)
        # The torch optimizer under accelerate's wrapper: its step is what the second graph holds.
        self.optimizer = getattr(optimizer, "optimizer", optimizer)
        self._make_capturable(self.optimizer)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.steps_run = 0
        self.graphs: dict[tuple, _ShapeGraph] = {}
        self.seen: set[tuple] = set()  # shapes already run eagerly (the warm-up's included)
        self.grads: list[torch.Tensor] | None = None  # the gradient buffers every graph fills
        self.optimizer_step: torch.cuda.CUDAGraph | None = None
        self.lr_tensors: list[torch.Tensor] = []
        self.warned_shape = False
        self.side_stream = torch.cuda.Stream()
        self.check_input_ids = getattr(accelerator.unwrap_model(model), "check_input_ids", None)

    @staticmethod
    def _make_capturable(optimizer: torch.optim.Optimizer) -> None:
        """Capturable Adam keeps its step counts on the device (a resumed state may hold them on the CPU)."""
        for group in optimizer.param_groups:
            group["capturable"] = True
            for param in group["params"]:
                state = optimizer.state.get(param, {})
                if "step" in state and torch.is_tensor(state["step"]):
                    state["step"] = state["step"].to(device=param.device, dtype=torch.float32)

    # ------------------------------------------------------------------------------------------ call
    def __call__(
        self, micro_batches: Sequence[dict[str, torch.Tensor]], stop_requested: bool = False
    ) -> StepResult:
        if len(micro_batches) != 1:
            raise ValueError(
                f"trainer.cuda_graph=true takes one micro-batch per step, got {len(micro_batches)}"
            )
        batch = micro_batches[0]
        signature = _signature(batch)
        if self.steps_run < WARMUP_STEPS:
            self.steps_run += 1
            self.seen.add(signature)
            return self._eager_on_side_stream(micro_batches, stop_requested)
        if signature not in self.graphs:
            if len(self.graphs) >= self.max_graphs:
                if not self.warned_shape:
                    warnings.warn(
                        f"trainer.cuda_graph: {len(self.graphs)} batch shapes are captured (the most "
                        f"kept); batches of other shapes run eagerly ({signature})",
                        stacklevel=2,
                    )
                    self.warned_shape = True
                return self._eager_on_side_stream(micro_batches, stop_requested)
            if signature not in self.seen:  # first sighting: its kernels tune, its plans build, eagerly
                self.seen.add(signature)
                return self._eager_on_side_stream(micro_batches, stop_requested)
            self._capture(batch, signature)
        return self._replay(self.graphs[signature], batch, stop_requested)

    def _eager_on_side_stream(self, micro_batches, stop_requested: bool) -> StepResult:
        """An eager step on a side stream, as graph capture needs for the steps that precede it."""
        # After the first capture the gradients are the graphs' buffers: the eager step must neither
        # accumulate into them nor drop them (it starts from no gradients and sets them to None).
        self.optimizer.zero_grad(set_to_none=True)
        side, main = self.side_stream, torch.cuda.current_stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):
            result = self.eager(micro_batches, stop_requested)
        main.wait_stream(side)
        if self.grads is not None:
            for param, grad in zip(self.params, self.grads):
                param.grad = grad
        return result

    def _replay(self, shape: _ShapeGraph, batch: dict[str, torch.Tensor], stop_requested: bool) -> StepResult:
        if self.check_input_ids is not None:  # on the host batch: the model skips it inside a capture
            self.check_input_ids(batch["input_ids"])
        for key, static in shape.static_batch.items():
            static.copy_(batch[key], non_blocking=True)
        shape.graph.replay()
        loss, grad_norm = shape.static_out.tolist()
        nonfinite = not (math.isfinite(loss) and math.isfinite(grad_norm))
        if not nonfinite:
            for lr, group in zip(self.lr_tensors, self.optimizer.param_groups):
                lr.fill_(float(group["lr"]))
            self.optimizer_step.replay()
        tokens = batch["input_ids"].numel()
        return StepResult(loss, grad_norm, nonfinite, nonfinite, stop_requested, tokens)

    # --------------------------------------------------------------------------------------- capture
    def _capture(self, batch: dict[str, torch.Tensor], signature: tuple) -> None:
        device = self.accelerator.device
        static_batch = {k: v.to(device).clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
        if self.grads is None:  # buffers outside every graph's pool, shared by all of them
            self.grads = [torch.zeros_like(p) for p in self.params]
        for param, grad in zip(self.params, self.grads):
            param.grad = grad
        torch.cuda.synchronize(device)
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                torch._foreach_zero_(self.grads)  # backward accumulates into the buffers in place
                terms = forward_loss(self.model, static_batch, self.task)
                loss = terms.loss_sum / terms.count
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)
                static_out = torch.stack([loss.detach().float(), grad_norm.float()])
            if any(p.grad is not g for p, g in zip(self.params, self.grads)):
                raise RuntimeError("the backward replaced a gradient buffer instead of accumulating into it")
            self.graphs[signature] = _ShapeGraph(graph, static_batch, static_out)
            if self.optimizer_step is None:
                self._capture_optimizer_step(device)
        except RuntimeError as error:
            raise RuntimeError(
                f"trainer.cuda_graph: capturing the training step failed ({error}); something in the "
                "model's forward/backward synchronises with the host. Train without trainer.cuda_graph."
            ) from error

    def _capture_optimizer_step(self, device) -> None:
        self.lr_tensors = [
            torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
            for group in self.optimizer.param_groups
        ]
        floats = [group["lr"] for group in self.optimizer.param_groups]
        for group, lr in zip(self.optimizer.param_groups, self.lr_tensors):
            group["lr"] = lr
        try:
            self.optimizer_step = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.optimizer_step):
                self.optimizer.step()
        finally:
            for group, lr in zip(self.optimizer.param_groups, floats):
                group["lr"] = lr  # checkpoints and the schedule see plain floats
