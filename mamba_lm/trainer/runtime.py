"""The accelerate side of a run: precision choice and the ``Accelerator``; the log set-up."""

from __future__ import annotations

import logging

import torch

from .config import Precision

_ACCELERATE_PRECISION = {Precision.bf16: "bf16", Precision.fp16: "fp16", Precision.fp32: "no"}


def resolve_precision(precision: Precision | str, use_cpu: bool) -> Precision:
    """``auto`` becomes bf16 on a GPU that supports it and fp32 elsewhere; other values stay."""
    precision = Precision(precision)
    if precision != Precision.auto:
        return precision
    on_gpu = not use_cpu and torch.cuda.is_available()
    return Precision.bf16 if on_gpu and torch.cuda.is_bf16_supported() else Precision.fp32


def make_accelerator(precision: Precision | str = Precision.auto, cpu: bool = False):
    """An ``accelerate.Accelerator`` with bf16/fp16 autocast (fp32 master weights) or none.

    Distributed settings (DDP, FSDP, number of processes) come from ``accelerate launch`` and its
    config file; the trainer applies gradient accumulation itself, so accelerate's stays 1.
    Without a GPU the CPU is chosen explicitly: only then do launched processes join one gloo
    group (accelerate would otherwise start each one as a lone single-process run).
    """
    from accelerate import Accelerator

    cpu = cpu or not torch.cuda.is_available()
    resolved = resolve_precision(precision, cpu)
    return Accelerator(cpu=cpu, mixed_precision=_ACCELERATE_PRECISION[resolved])


def configure_logging(level: int = logging.INFO) -> None:
    """Send INFO records (the metric lines) to stderr when nothing else has configured logging (Hydra's
    own set-up, a user's handlers are left as they are)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mamba_lm").setLevel(min(level, logging.getLogger("mamba_lm").getEffectiveLevel()))
