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

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from .config import OptimConfig, Schedule


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
    return torch.optim.AdamW(
        param_groups, lr=config.lr, betas=tuple(config.betas), eps=config.eps, fused=fused or None
    )


@dataclass
class LRSchedule:
    """Linear warmup to the peak, then cosine decay to ``min_lr`` at ``max_steps`` (or constant).

    ``factor(step)`` is the multiplier of each group's peak lr for the update with 0-based index
    ``step``; the first update already has a non-zero lr (``(step + 1) / warmup_steps``).
    """

    peak_lr: float
    min_lr: float
    warmup_steps: int
    max_steps: int
    schedule: Schedule = Schedule.cosine

    @classmethod
    def from_config(cls, config: OptimConfig, max_steps: int) -> LRSchedule:
        return cls(config.lr, config.min_lr, config.warmup_steps, max_steps, Schedule(config.schedule))

    def lr(self, step: int) -> float:
        """Learning rate of the main group at update ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        if self.schedule == Schedule.constant:
            return self.peak_lr
        decay_steps = max(1, self.max_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.min_lr + 0.5 * (self.peak_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def factor(self, step: int) -> float:
        return self.lr(step) / self.peak_lr

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set each group's lr for update ``step`` (``initial_lr`` x factor); returns the main group's lr."""
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        return self.lr(step)
