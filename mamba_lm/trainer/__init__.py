"""Training machinery: config schema, optimizer and schedule, the loop, checkpoints, metrics, the run folder.

Evaluation and reports use the public names below: ``load_checkpoint`` / ``load_model`` and
``CheckpointError`` to rebuild a trained model, ``RunFolder`` / ``find_run_folder`` / ``read_metrics`` to
read what a run wrote; ``build_model_from_dict`` / ``model_config_to_dict`` for the model dicts that run
configs and checkpoints store; ``config_dir`` for the Hydra configs.

Importing this package needs neither Hydra nor wandb (the Hydra schema registration lives in
``mamba_lm.trainer.config_store``; wandb is imported only when a run logs to it).
"""

from ..config_files import config_dir
from .checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    best_checkpoint,
    find_latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_model,
    resolve_checkpoint,
)
from .config import LoggerConfig, OptimConfig, ParamGroupRule, Precision, RunConfig, TrainerConfig
from .flops import model_flops_per_token, peak_flops_per_device
from .loop import FitSummary, NonFiniteLossError, Trainer
from .model_factory import build_model_from_dict, model_config_from_dict, model_config_to_dict
from .optim import LRSchedule, build_optimizer, plan_parameter_groups
from .run_folder import (
    RESULT_KINDS,
    RunFolder,
    RunFolderBusy,
    find_run_folder,
    holds_training_output,
    read_metrics,
    step_of,
)
from .runtime import make_accelerator, resolve_precision
from .step import StepResult, TrainStep, evaluate, forward_loss

__all__ = [
    "RESULT_KINDS",
    "CheckpointError",
    "FitSummary",
    "LRSchedule",
    "LoadedCheckpoint",
    "LoggerConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "ParamGroupRule",
    "Precision",
    "RunConfig",
    "RunFolder",
    "RunFolderBusy",
    "StepResult",
    "TrainStep",
    "Trainer",
    "TrainerConfig",
    "best_checkpoint",
    "build_model_from_dict",
    "build_optimizer",
    "config_dir",
    "evaluate",
    "find_latest_checkpoint",
    "find_run_folder",
    "forward_loss",
    "holds_training_output",
    "list_checkpoints",
    "load_checkpoint",
    "load_model",
    "make_accelerator",
    "model_config_from_dict",
    "model_config_to_dict",
    "model_flops_per_token",
    "peak_flops_per_device",
    "plan_parameter_groups",
    "read_metrics",
    "resolve_checkpoint",
    "resolve_precision",
    "step_of",
]
