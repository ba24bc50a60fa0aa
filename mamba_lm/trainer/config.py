"""The training run's configuration: plain dataclasses, one docstring per field.

These classes are the schema Hydra validates `configs/` against (registered in
``mamba_lm.trainer.config_store``), and what the loop receives after validation
(``OmegaConf.to_object`` turns the composed config into these objects). They import neither
Hydra nor OmegaConf, so the loop and the benchmark run without them.

Range checks live in ``__post_init__``: they run when the composed config is turned into objects,
before any data or model is built, and name the offending key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MISSING = "???"  # OmegaConf's marker for a value that must be given


class Precision(str, Enum):
    """Numeric precision of the forward/backward pass; weights and optimizer state stay fp32."""

    auto = "auto"  # bf16 autocast on a GPU that supports it, fp32 elsewhere (CPU)
    bf16 = "bf16"  # bf16 autocast, fp32 master weights
    fp16 = "fp16"  # fp16 autocast with a dynamic loss scaler
    fp32 = "fp32"  # no autocast


class Schedule(str, Enum):
    """Learning-rate shape after the linear warmup."""

    cosine = "cosine"  # cosine decay from the peak lr to min_lr at max_steps
    constant = "constant"  # the peak lr until the end


class LoggerBackend(str, Enum):
    """Where metrics go besides metrics.jsonl and the progress bar."""

    wandb = "wandb"
    none = "none"


class WandbMode(str, Enum):
    """wandb's mode: offline writes RUN_DIR/wandb/ only (sync later with `wandb sync`)."""

    offline = "offline"
    online = "online"
    disabled = "disabled"


def _require(condition: bool, key: str, expected: str, value: Any) -> None:
    if not condition:
        raise ValueError(f"config key {key!r} must be {expected}, got {value!r}")


@dataclass
class ParamGroupRule:
    """Optimizer settings for the parameters whose names match a regular expression."""

    match: str = MISSING
    """Regular expression searched (re.search) in each parameter's name, e.g. 'A_log|dt_proj'."""
    lr: float | None = None
    """Peak learning rate for the matched parameters (null: optim.lr); the schedule scales it alike."""
    weight_decay: float | None = None
    """Weight decay for the matched parameters (null: the default rule decides)."""


@dataclass
class OptimConfig:
    """AdamW with the Mamba paper's recipe: betas (0.9, 0.95), wd 0.1, clip 1.0, warmup + cosine."""

    lr: float = 3e-3
    """Peak learning rate, reached at the end of the warmup."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """AdamW's (beta1, beta2)."""
    eps: float = 1e-8
    """AdamW's epsilon."""
    weight_decay: float = 0.1
    """Decoupled weight decay for matrices; biases, norm weights, embeddings and parameters marked
    `_no_weight_decay` (A_log, D) get none, as in the paper's (flash-attention's) training recipe."""
    decay_embeddings: bool = False
    """Apply weight decay to embedding tables too (the recipe does not)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0: no clipping; the norm is still logged)."""
    warmup_steps: int = 0
    """Steps of linear warmup from 0 to lr."""
    schedule: Schedule = Schedule.cosine
    """Shape after the warmup: cosine (down to min_lr at trainer.max_steps) or constant."""
    min_lr: float = 1e-5
    """Learning rate at the end of the cosine decay."""
    replan_schedule: bool = False
    """On resume, re-plan the schedule from the resume step for the config's values (cosine from the
    current lr down to min_lr at trainer.max_steps). false: keep the plan the run started with (a
    checkpoint carries it); steps past its planned end then train at its min_lr."""
    fused: bool | None = None
    """Use torch's fused AdamW (null: on CUDA yes, elsewhere no)."""
    param_groups: list[ParamGroupRule] = field(default_factory=list)
    """Extra rules, first match wins, e.g. [{match: 'A_log|log_dt', lr: 1e-3, weight_decay: 0.0}]."""

    def __post_init__(self) -> None:
        _require(self.lr > 0, "optim.lr", "> 0", self.lr)
        _require(len(self.betas) == 2, "optim.betas", "a list of two numbers", self.betas)
        _require(all(0 <= b < 1 for b in self.betas), "optim.betas", "in [0, 1)", self.betas)
        _require(self.weight_decay >= 0, "optim.weight_decay", ">= 0", self.weight_decay)
        _require(self.grad_clip >= 0, "optim.grad_clip", ">= 0", self.grad_clip)
        _require(self.warmup_steps >= 0, "optim.warmup_steps", ">= 0", self.warmup_steps)
        _require(0 <= self.min_lr <= self.lr, "optim.min_lr", "in [0, optim.lr]", self.min_lr)


BEST_METRICS = {"val_accuracy": max, "val_loss": min, "val_ppl": min}
"""The validation metrics ``trainer.keep_best`` may follow, with the choice that makes one value better."""


@dataclass
class TrainerConfig:
    """How the loop runs: length, batch, precision, evaluation, checkpoints."""

    max_steps: int = 300
    """Optimizer steps of the whole run; a resumed run continues up to this count (its lr schedule
    stays as planned at the start unless optim.replan_schedule=true)."""
    micro_batch_size: int = 8
    """Sequences per process in one forward/backward pass."""
    grad_accum_steps: int = 1
    """Micro-batches per optimizer step; global batch = micro_batch_size x grad_accum_steps x processes."""
    precision: Precision = Precision.auto
    """auto | bf16 | fp16 | fp32 (weights stay fp32; bf16/fp16 are autocast)."""
    log_every: int = 10
    """Write metrics.jsonl/wandb every this many steps (the loss is the mean since the last log)."""
    eval_every: int = 100
    """Validate every this many steps and at the end (0: only at the end)."""
    eval_batches: int | None = 20
    """Validation batches per evaluation (null: the whole validation split)."""
    eval_batch_size: int | None = None
    """Validation batch size per process (null: micro_batch_size)."""
    save_every: int = 100
    """Write a checkpoint every this many steps (0: only at the end); also on SIGTERM and at the end."""
    keep_last: int = 3
    """Keep this many newest checkpoints, delete older ones."""
    keep_best: str | None = None
    """A validation metric (val_accuracy: highest; val_loss, val_ppl: lowest) whose best checkpoint is kept
    beside the keep_last newest: each validation that improves it is saved at once, as a Lightning
    ModelCheckpoint(monitor=...) does (null: none)."""
    max_nonfinite_steps: int = 5
    """Stop the run after this many consecutive steps with a non-finite loss or gradient norm."""
    tf32: bool = False
    """fp32 matrix products (and cuDNN convolutions) on TF32 tensor cores, Ampere and newer: a 10-bit
    mantissa in the products, fp32 accumulation. S4's train.py turns both on for all its runs; false: full
    fp32 products (PyTorch's default). bf16/fp16 autocast is unaffected."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    cuda_graph: bool = False
    """Replay the training step from CUDA graphs (launch-bound small models: one CUDA process, fp32,
    grad_accum_steps 1, batches of one shape; see mamba_lm/trainer/graphed_step.py)."""
    cpu: bool = False
    """Train on the CPU even where a GPU is present."""
    peak_flops: float | None = None
    """Peak FLOP/s of one device for MFU (null: known GPUs by name, H100/H200 bf16 989e12; else no MFU)."""
    progress_bar: bool = True
    """Show a tqdm progress bar with loss, lr, grad norm, tokens/s, MFU and memory."""
    plots: bool = True
    """Write loss/lr curves as PNG into RUN_DIR/plots at the end of the run."""
    profile_steps: int = 0
    """Profile this many training steps after the run's first 5 and write the operators and kernels by
    self time to RUN_DIR/profile.txt (0: off; see mamba_lm/trainer/profiling.py)."""

    def __post_init__(self) -> None:
        for key in ("max_steps", "micro_batch_size", "grad_accum_steps", "log_every", "keep_last"):
            value = getattr(self, key)
            _require(value >= 1, f"trainer.{key}", ">= 1", value)
        for key in ("eval_every", "save_every", "profile_steps"):
            value = getattr(self, key)
            _require(value >= 0, f"trainer.{key}", ">= 0", value)
        _require(
            self.max_nonfinite_steps >= 1, "trainer.max_nonfinite_steps", ">= 1", self.max_nonfinite_steps
        )
        _require(
            self.eval_batches is None or self.eval_batches >= 1,
            "trainer.eval_batches",
            ">= 1 or null",
            self.eval_batches,
        )
        _require(
            self.eval_batch_size is None or self.eval_batch_size >= 1,
            "trainer.eval_batch_size",
            ">= 1 or null",
            self.eval_batch_size,
        )
        _require(
            self.keep_best in (None, *BEST_METRICS),
            "trainer.keep_best",
            f"one of {', '.join(BEST_METRICS)} or null",
            self.keep_best,
        )
        _require(
            self.peak_flops is None or self.peak_flops > 0,
            "trainer.peak_flops",
            "> 0 or null",
            self.peak_flops,
        )


@dataclass
class LoggerConfig:
    """Experiment tracking (metrics.jsonl and the progress bar are always on)."""

    backend: LoggerBackend = LoggerBackend.wandb
    """wandb | none."""
    mode: WandbMode | None = None
    """wandb mode: offline (RUN_DIR/wandb), online or disabled; null: $WANDB_MODE, else offline."""
    project: str | None = None
    """wandb project; null: $WANDB_PROJECT, else "mamba-lm"."""
    entity: str | None = None
    """wandb entity (team or user); null: $WANDB_ENTITY or wandb's default."""
    name: str | None = None
    """Run name; null: $WANDB_NAME, else the run folder's name."""
    tags: list[str] = field(default_factory=list)
    """wandb tags."""


@dataclass
class RunConfig:
    """The whole run: `configs/train.yaml` composes one of these."""

    model: Any = MISSING
    """Model architecture and size (group model/; validated by its own schema, see config_store)."""
    data: Any = MISSING
    """Data module settings (group data/; keys defined by the data package's configs)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule (group optim/)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Loop settings (group trainer/)."""
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    """Experiment tracking (group logger/)."""
    seed: int = 0
    """Seed of the model's initialization, the data order and every RNG."""
    resume: str | None = "auto"
    """auto: continue from the newest valid checkpoint in the run folder if there is one; a path:
    that checkpoint folder (or run folder); null: start fresh (refused if the folder has checkpoints)."""

    def __post_init__(self) -> None:
        extra = unknown_keys(self)
        if extra:  # Hydra's `+key=value` can add keys the schema does not declare
            raise ValueError(f"unknown config key(s) {extra}: not in the schema (mamba_lm/trainer/config.py)")


def unknown_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted names of attributes set on (nested) config dataclasses that are not declared fields."""
    if isinstance(node, list):
        return [key for i, item in enumerate(node) for key in unknown_keys(item, f"{prefix}[{i}]")]
    if not dataclasses.is_dataclass(node):
        return []
    declared = {f.name for f in dataclasses.fields(node)}
    found = [f"{prefix}{name}" for name in vars(node) if name not in declared]
    for name in declared:
        found += unknown_keys(getattr(node, name), f"{prefix}{name}.")
    return found
