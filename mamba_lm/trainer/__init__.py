"""Training machinery: config schema, optimizer and schedule, the loop, checkpoints, metrics.

Importing this package needs neither Hydra nor wandb (the Hydra schema registration lives in
``mamba_lm.trainer.config_store``; wandb is imported only when a run logs to it).
"""

from .checkpoint import CheckpointError, find_latest_checkpoint, load_model, resolve_checkpoint
from .config import LoggerConfig, OptimConfig, ParamGroupRule, Precision, RunConfig, TrainerConfig
from .flops import model_flops_per_token, peak_flops_per_device
from .loop import FitSummary, NonFiniteLossError, Trainer
from .optim import LRSchedule, build_optimizer, plan_parameter_groups
from .runtime import make_accelerator, resolve_precision
from .step import StepResult, TrainStep, evaluate, forward_loss

__all__ = [
    "CheckpointError",
    "FitSummary",
    "LRSchedule",
    "LoggerConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "ParamGroupRule",
    "Precision",
    "RunConfig",
    "StepResult",
    "TrainStep",
    "Trainer",
    "TrainerConfig",
    "build_optimizer",
    "evaluate",
    "find_latest_checkpoint",
    "forward_loss",
    "load_model",
    "make_accelerator",
    "model_flops_per_token",
    "peak_flops_per_device",
    "plan_parameter_groups",
    "resolve_checkpoint",
    "resolve_precision",
]
