"""AdamW with parameter groups, and the warmup + cosine learning-rate schedule.

Weight decay follows the Mamba paper's training recipe (flash-attention's
``group_parameters_for_optimizer``): matrices decay; biases, normalization weights, embedding
tables and parameters carrying ``_no_weight_decay = True`` (Mamba's A_log and D) do not.
A parameter may carry S4's ``_optim = {"lr": ..., "weight_decay": ...}`` (S4D's SSM parameters
do); ``OptimConfig.param_groups`` rules (regex on the parameter name) override both.

The optimizer is built on the unwrapped model and then handed to ``accelerator.prepare``
together with it (DDP, FSDP); with FSDP, different groups need ``fsdp_use_orig_params: true``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import OptimConfig, Schedule

logger = logging.getLogger(__name__)

PLAN_KEY = "lr_plan"
"""Key of the schedule's plan (``LRSchedule.state_dict()``) in each optimizer parameter group."""
PLAN_FIELDS = (
    "peak_lr",
    "min_lr",
    "warmup_steps",
    "max_steps",
    "schedule",
    "decay_start_step",
    "decay_start_lr",
)
"""The keys of ``LRSchedule.state_dict()``."""


def _is_norm(module: nn.Module) -> bool:
    torch_norms = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)
    return isinstance(module, torch_norms) or "norm" in type(module).__name__.lower()


def no_weight_decay_names(model: nn.Module, decay_embeddings: bool = False) -> set[str]:
    """Names of the parameters that take no weight decay under the recipe's default rule.

    Biases, weights of normalization modules, embedding tables (unless ``decay_embeddings``) and
    parameters with the attribute ``_no_weight_decay = True``. A tied parameter (embedding = LM
    head) is listed under the name ``named_parameters`` gives it (its first owner).
    """
    exempt: set[int] = set()
    for module in model.modules():
        for local_name, param in module.named_parameters(recurse=False):
            is_embedding = isinstance(module, nn.Embedding) and not decay_embeddings
            if local_name.endswith("bias") or _is_norm(module) or is_embedding:
                exempt.add(id(param))
    return {
        name
        for name, param in model.named_parameters()
        if id(param) in exempt or getattr(param, "_no_weight_decay", False)
    }


@dataclass
class GroupSpec:
    """One optimizer parameter group before it holds tensors."""

    lr: float
    weight_decay: float
    names: list[str]


def plan_parameter_groups(model: nn.Module, config: OptimConfig) -> list[GroupSpec]:
    """Split the trainable parameters of the (unwrapped) model into groups by (lr, weight decay).

    Precedence: a matching ``config.param_groups`` rule, then the parameter's ``_optim`` dict,
    then the default rule (``no_weight_decay_names``) with ``config.lr``.

    Returns groups in a deterministic order (first appearance); frozen parameters are left out.
    Raises ValueError for a ``param_groups`` rule that matches no parameter (a misspelled pattern).
    """
    exempt = no_weight_decay_names(model, config.decay_embeddings)
    rules = [(re.compile(rule.match), rule) for rule in config.param_groups]
    used_rules: set[int] = set()
    groups: dict[tuple[float, float], GroupSpec] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr, decay = config.lr, 0.0 if name in exempt else config.weight_decay
        own = getattr(param, "_optim", None) or {}
        lr, decay = own.get("lr", lr), own.get("weight_decay", decay)
        for index, (pattern, rule) in enumerate(rules):
            if pattern.search(name):
                used_rules.add(index)
                lr = rule.lr if rule.lr is not None else lr
                decay = rule.weight_decay if rule.weight_decay is not None else decay
                break
        groups.setdefault((lr, decay), GroupSpec(lr, decay, [])).names.append(name)
    for index, (_, rule) in enumerate(rules):
        if index not in used_rules:
            raise ValueError(f"optim.param_groups rule {rule.match!r} matches no parameter name of the model")
    return list(groups.values())


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the (unwrapped) model's trainable parameters, in the groups ``plan_parameter_groups`` gives.

    Each group keeps its peak lr as ``initial_lr``; the schedule sets ``lr`` from it every step.
    Fused AdamW is used on CUDA unless ``config.fused`` says otherwise.
    """
    by_name = dict(model.named_parameters())
    param_groups = []
    for group in plan_parameter_groups(model, config):
        params = [by_name[name] for name in group.names]
        param_groups.append(
            {"params": params, "lr": group.lr, "initial_lr": group.lr, "weight_decay": group.weight_decay}
        )
    on_cuda = any(p.is_cuda for group in param_groups for p in group["params"])
    fused = on_cuda if config.fused is None else config.fused
    optimizer = torch.optim.AdamW(
        param_groups, lr=config.lr, betas=tuple(config.betas), eps=config.eps, fused=fused or None
    )
    optimizer.register_state_dict_post_hook(_with_schedule_plan)
    optimizer.register_load_state_dict_post_hook(_drop_empty_plan)
    return optimizer


def _with_schedule_plan(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
    """Every group of ``state_dict`` holds the schedule's plan under ``PLAN_KEY`` (all None before the
    first ``LRSchedule.apply``), so a checkpoint saves it and a fresh optimizer has the key to load it into
    (torch's state-dict loader takes only the keys the live optimizer's ``state_dict`` has)."""
    for live, saved in zip(optimizer.param_groups, state_dict["param_groups"]):
        saved[PLAN_KEY] = dict(live.get(PLAN_KEY) or dict.fromkeys(PLAN_FIELDS))
    return state_dict


def _drop_empty_plan(optimizer: torch.optim.Optimizer) -> None:
    """After a load, a group keeps ``PLAN_KEY`` only when it holds a plan (a fresh optimizer's state dict, as
    accelerate reloads it, holds the empty one): the trainer's restore, which sets back the configured
    hyperparameters after loading a checkpoint, then leaves the checkpoint's plan in place."""
    for group in optimizer.param_groups:
        if (group.get(PLAN_KEY) or {}).get("peak_lr") is None:
            group.pop(PLAN_KEY, None)


@dataclass
class LRSchedule:
    """Linear warmup to the peak, then cosine decay to ``min_lr`` at ``max_steps`` (or constant).

    ``factor(step)`` is the multiplier of each group's peak lr for the update with 0-based index
    ``step``; the first update already has a non-zero lr (``(step + 1) / warmup_steps``). Past
    ``max_steps`` the lr stays at ``min_lr``.

    The plan (these fields, ``state_dict()``) is fixed when a run starts: ``apply`` writes it into
    every optimizer parameter group under ``PLAN_KEY``, so each checkpoint's optimizer state carries
    it. On resume the first ``apply`` finds the checkpoint's plan there and keeps it, whatever the
    config now says (e.g. a larger ``trainer.max_steps``: the steps past the planned end run at
    ``min_lr``), unless ``replan`` is set (``optim.replan_schedule=true``): then the cosine starts
    again from the resume step and its current lr, down to the config's ``min_lr`` at its
    ``max_steps``. Either way one log line says so.
    """

    peak_lr: float
    min_lr: float
    warmup_steps: int
    max_steps: int
    schedule: Schedule = Schedule.cosine
    decay_start_step: int | None = None
    """Step where the cosine starts (null: the end of the warmup); set by a re-plan on resume."""
    decay_start_lr: float | None = None
    """The lr at ``decay_start_step`` (null: ``peak_lr``)."""
    replan: bool = False
    """On resume, re-plan from the resume step instead of keeping the checkpoint's plan (not saved)."""

    def __post_init__(self) -> None:
        self.schedule = Schedule(self.schedule)
        self._bound = False  # True once apply() has checked the optimizer for a plan

    @classmethod
    def from_config(cls, config: OptimConfig, max_steps: int) -> LRSchedule:
        schedule = Schedule(config.schedule)
        return cls(
            config.lr, config.min_lr, config.warmup_steps, max_steps, schedule, replan=config.replan_schedule
        )

    def lr(self, step: int) -> float:
        """Learning rate of the main group at update ``step`` (0-based)."""
        if self.schedule == Schedule.cosine and step >= self.max_steps:
            return self.min_lr  # past the planned end (a resumed run that trains longer), even mid-warmup
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        if self.schedule == Schedule.constant:
            return self.peak_lr
        start = self.warmup_steps if self.decay_start_step is None else self.decay_start_step
        top = self.peak_lr if self.decay_start_lr is None else self.decay_start_lr
        progress = min(1.0, max(0, step - start) / max(1, self.max_steps - start))
        return self.min_lr + 0.5 * (top - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def factor(self, step: int) -> float:
        return self.lr(step) / self.peak_lr

    def state_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready values (what checkpoints carry)."""
        state = {key: getattr(self, key) for key in PLAN_FIELDS}
        return dict(state, schedule=self.schedule.value)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Adopt a saved plan (``replan`` stays as configured)."""
        for key, value in state.items():
            setattr(self, key, Schedule(value) if key == "schedule" else value)

    def describe(self) -> str:
        """The plan in words, e.g. 'warmup 10, cosine to min_lr 1e-05 at step 300'."""
        if self.schedule == Schedule.constant:
            return f"warmup {self.warmup_steps}, constant at {self.peak_lr:g}"
        start = "" if self.decay_start_step is None else f" from step {self.decay_start_step}"
        return f"warmup {self.warmup_steps}, cosine{start} to min_lr {self.min_lr:g} at step {self.max_steps}"

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set each group's lr for update ``step`` (``initial_lr`` x factor); returns the main group's lr.

        The first call resolves the plan against one a resumed optimizer carries (see the class).
        """
        if not self._bound:
            self._bind(optimizer, step)
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        return self.lr(step)

    def _bind(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        saved = optimizer.param_groups[0].get(PLAN_KEY)  # None: a fresh run, or an older checkpoint
        configured = dataclasses.replace(self)
        if saved is not None and saved != self.state_dict():
            resumed = dataclasses.replace(self)
            resumed.load_state_dict(saved)
            if self.replan:
                self._replan_from(resumed, step)
                _warn_on_main_process(
                    f"lr schedule re-planned at step {step} (optim.replan_schedule=true): {self.describe()}; "
                    f"the checkpoint's plan was {resumed.describe()}"
                )
            else:
                self.load_state_dict(saved)
                _warn_on_main_process(
                    f"lr schedule kept as the run planned it: {self.describe()}; the config's "
                    f"({configured.describe()}) is not used{_past_end(self, configured.max_steps)}. "
                    "Set optim.replan_schedule=true to re-plan from the resume step instead"
                )
        elif saved is None and step > 0:
            _warn_on_main_process(
                f"the checkpoint carries no lr schedule plan: following the config's ({self.describe()})"
            )
        for group in optimizer.param_groups:
            group[PLAN_KEY] = self.state_dict()
        self._bound = True

    def _replan_from(self, resumed: LRSchedule, step: int) -> None:
        """Keep the config's plan, with its cosine starting at ``step`` from the lr ``resumed`` has there."""
        if self.schedule == Schedule.cosine and step > self.warmup_steps:
            self.decay_start_step = step
            self.decay_start_lr = resumed.lr(step) * self.peak_lr / resumed.peak_lr


def _past_end(plan: LRSchedule, configured_max_steps: int) -> str:
    if plan.schedule == Schedule.cosine and configured_max_steps > plan.max_steps:
        return f": steps {plan.max_steps + 1}-{configured_max_steps} train at min_lr {plan.min_lr:g}"
    return ""


def _warn_on_main_process(text: str) -> None:
    """A warning on the main process only (every process applies the schedule)."""
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        logger.warning(text)
