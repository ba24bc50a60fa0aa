"""The training step replayed from CUDA graphs (``trainer.cuda_graph=true``), for launch-bound small models.

A 2-layer D = 64 Mamba on 8 x 256 tokens issues a few hundred small kernels per step and runs at the CPU's
launch rate (~70 steps/s on an H200), far from the GPU's. ``GraphedTrainStep`` captures the step once and
replays it, so one launch per graph replaces hundreds. It does what ``TrainStep`` does, in two graphs:

1. forward, loss, backward and gradient clipping of one micro-batch, writing the loss and the gradient norm
   into a static tensor;
2. the optimizer step, replayed only when that loss and norm are finite (``TrainStep`` skips such steps the
   same way).

Each step reads the loss and the norm back (one synchronisation, as ``TrainStep`` does). The learning rate
of each parameter group lives in a device tensor refreshed from ``group["lr"]`` before each replay, so any
schedule works. The first ``WARMUP_STEPS`` steps run eagerly on a side stream (they create the optimizer
state and run the kernels' autotuning, which a capture must not do); the step after them is captured.

Requirements, checked by ``check_cuda_graph_support``: a CUDA device, one process, no gradient
accumulation, fp32 (no autocast, no loss scaler), no torch.compile, and batches of one shape (a batch of
another shape runs eagerly, with a warning once).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from .step import StepResult, TrainStep, forward_loss

WARMUP_STEPS = 3


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


class GraphedTrainStep:
    """``TrainStep``'s contract (same call, same ``StepResult``), replayed from two CUDA graphs."""

    def __init__(self, accelerator, model: nn.Module, optimizer, task: str = "lm", grad_clip: float = 1.0):
        self.accelerator = accelerator
        self.model = model
        self.task = task
        self.max_norm = grad_clip if grad_clip > 0 else math.inf
        self.eager = TrainStep(accelerator, model, optimizer, task, grad_clip)
        # The torch optimizer under accelerate's wrapper: its step is what the second graph holds.
        self.optimizer = getattr(optimizer, "optimizer", optimizer)
        self._make_capturable(self.optimizer)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.steps_run = 0
        self.forward_backward: torch.cuda.CUDAGraph | None = None
        self.optimizer_step: torch.cuda.CUDAGraph | None = None
        self.static_batch: dict[str, torch.Tensor] = {}
        self.static_out: torch.Tensor | None = None  # (2,): loss, gradient norm
        self.lr_tensors: list[torch.Tensor] = []
        self.batch_signature: tuple | None = None
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
        if self.steps_run < WARMUP_STEPS:
            self.steps_run += 1
            return self._eager_on_side_stream(micro_batches, stop_requested)
        if self.forward_backward is None:
            self._capture(batch)
        if _signature(batch) != self.batch_signature:
            if not self.warned_shape:
                warnings.warn(
                    "trainer.cuda_graph: a batch of another shape than the captured one runs eagerly "
                    f"({_signature(batch)} vs {self.batch_signature})",
                    stacklevel=2,
                )
                self.warned_shape = True
            return self._eager_on_side_stream(micro_batches, stop_requested)
        return self._replay(batch, stop_requested)

    def _eager_on_side_stream(self, micro_batches, stop_requested: bool) -> StepResult:
        """An eager step on a side stream, as graph capture needs for the steps that precede it."""
        # After the capture the gradients are the graphs' static tensors: the eager step must neither
        # accumulate into them nor drop them (it starts from no gradients and sets them to None).
        captured = [p.grad for p in self.params] if self.forward_backward is not None else None
        self.optimizer.zero_grad(set_to_none=True)
        side, main = self.side_stream, torch.cuda.current_stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):
            result = self.eager(micro_batches, stop_requested)
        main.wait_stream(side)
        if captured is not None:
            for param, grad in zip(self.params, captured):
                param.grad = grad
        return result

    def _replay(self, batch: dict[str, torch.Tensor], stop_requested: bool) -> StepResult:
        if self.check_input_ids is not None:  # on the host batch: the model skips it inside a capture
            self.check_input_ids(batch["input_ids"])
        for key, static in self.static_batch.items():
            static.copy_(batch[key], non_blocking=True)
        self.forward_backward.replay()
        loss, grad_norm = self.static_out.tolist()
        nonfinite = not (math.isfinite(loss) and math.isfinite(grad_norm))
        if not nonfinite:
            for lr, group in zip(self.lr_tensors, self.optimizer.param_groups):
                lr.fill_(float(group["lr"]))
            self.optimizer_step.replay()
        tokens = batch["input_ids"].numel()
        return StepResult(loss, grad_norm, nonfinite, nonfinite, stop_requested, tokens)

    # --------------------------------------------------------------------------------------- capture
    def _capture(self, batch: dict[str, torch.Tensor]) -> None:
        device = self.accelerator.device
        self.batch_signature = _signature(batch)
        self.static_batch = {k: v.to(device).clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
        self.optimizer.zero_grad(set_to_none=True)  # the backward in the graph allocates the gradients
        torch.cuda.synchronize(device)
        try:
            self.forward_backward = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.forward_backward):
                terms = forward_loss(self.model, self.static_batch, self.task)
                loss = terms.loss_sum / terms.count
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)
                self.static_out = torch.stack([loss.detach().float(), grad_norm.float()])
            self.lr_tensors = [
                torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
                for group in self.optimizer.param_groups
            ]
            floats = [group["lr"] for group in self.optimizer.param_groups]
            for group, lr in zip(self.optimizer.param_groups, self.lr_tensors):
                group["lr"] = lr
            try:
                self.optimizer_step = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.optimizer_step, pool=self.forward_backward.pool()):
                    self.optimizer.step()
            finally:
                for group, lr in zip(self.optimizer.param_groups, floats):
                    group["lr"] = lr  # checkpoints and the schedule see plain floats
        except RuntimeError as error:
            raise RuntimeError(
                f"trainer.cuda_graph: capturing the training step failed ({error}); something in the "
                "model's forward/backward synchronises with the host. Train without trainer.cuda_graph."
            ) from error
