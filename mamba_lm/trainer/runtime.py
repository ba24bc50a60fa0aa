"""The accelerate side of a run: precision choice, the ``Accelerator`` and FSDP's mixed precision; logs.

Precision under each launch (``trainer.precision`` bf16 or fp16):

- one process, DDP: weights, gradients, optimizer state and DDP's gradient all-reduce stay fp32;
  accelerate runs the forward under autocast, so matmuls compute in bf16/fp16 while the SSM
  parameters' elementwise use (A_log, D, dt bias, S4D's log_dt/log_A_real/A_imag) stays fp32.
- FSDP2 (configs/accelerate/fsdp.yaml): each unit (one per residual Block, embedding, head, root)
  all-gathers its parameters in bf16/fp16 and reduce-scatters gradients in fp32
  (``fsdp_mixed_precision``; accelerate's default would reduce in bf16). FSDP2 has one parameter
  dtype per unit, so every module that owns SSM parameters (a Mamba mixer, which also reads its
  dt_proj weight and bias itself; an S4D layer) is made its own unit first, gathered and reduced in
  fp32 (``fsdp_ssm_policy``); for Mamba that is most of a block's weights (in_proj, conv, x_proj,
  dt_proj, out_proj with A_log and D), the Block unit keeps the norm. The forward runs under
  autocast, as under DDP: projections compute in bf16/fp16, the SSM in fp32, and no unit casts its
  inputs, so the fp32 residual stream stays fp32. Sharded weights, gradients and optimizer state
  are fp32 everywhere.
"""

from __future__ import annotations

import logging
import os
from functools import partial

import torch
from torch import nn

from .config import Precision

_ACCELERATE_PRECISION = {Precision.bf16: "bf16", Precision.fp16: "fp16", Precision.fp32: "no"}
_LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}

SSM_PARAMETERS = frozenset({"A_log", "D", "log_dt", "log_A_real", "A_imag"})
"""Names of the parameters kept in fp32 under FSDP (with the rest of the module that owns them)."""


def resolve_precision(precision: Precision | str, use_cpu: bool) -> Precision:
    """``auto`` becomes bf16 on a GPU that supports it and fp32 elsewhere; other values stay."""
    precision = Precision(precision)
    if precision != Precision.auto:
        return precision
    on_gpu = not use_cpu and torch.cuda.is_available()
    return Precision.bf16 if on_gpu and torch.cuda.is_bf16_supported() else Precision.fp32


def fsdp_mixed_precision(precision: Precision | str):
    """FSDP2's policy for the units of a bf16/fp16 run: parameters gathered (and computed) in that dtype,
    gradients reduced in fp32, inputs not cast (autocast decides); None for fp32 (no cast)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    dtype = _LOW_PRECISION.get(_ACCELERATE_PRECISION[Precision(precision)])
    if dtype is None:
        return None
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32, cast_forward_inputs=False)


def fsdp_ssm_policy():
    """FSDP2's policy for the units that own SSM parameters: gathered, reduced and kept in fp32; inputs
    are not cast (autocast picks each operation's dtype)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    fp32 = torch.float32
    return MixedPrecisionPolicy(param_dtype=fp32, reduce_dtype=fp32, cast_forward_inputs=False)


def ssm_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that own an SSM parameter (``SSM_PARAMETERS``) themselves."""
    return [
        module
        for module in model.modules()
        if any(name in SSM_PARAMETERS for name, _ in module.named_parameters(recurse=False))
    ]


def shard_ssm_modules(model: nn.Module, optimizers=(), **fully_shard_kwargs) -> int:
    """Make each of ``ssm_modules(model)`` an FSDP2 unit under ``fsdp_ssm_policy`` (before the rest is
    sharded); the ``optimizers`` built on the model are pointed at the sharded parameters. Returns the
    number of units made."""
    from torch.distributed.fsdp import fully_shard

    modules = ssm_modules(model)
    if not modules:
        return 0
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    for module in modules:
        fully_shard(module, mp_policy=fsdp_ssm_policy(), **fully_shard_kwargs)
    sharded = dict(model.named_parameters())
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["params"] = [sharded[names[id(p)]] if id(p) in names else p for p in group["params"]]
    return len(modules)


def _prepare_with_fp32_ssm_units(accelerator, prepare, *args, device_placement=None):
    """``accelerator.prepare`` under FSDP2 with bf16/fp16: the SSM modules become fp32 units first
    (``shard_ssm_modules``), and the prepared model's forward runs under autocast (accelerate applies
    autocast under DDP only)."""
    plugin = accelerator.state.fsdp_plugin
    mesh = getattr(accelerator, "torch_device_mesh", None)
    if mesh is not None:
        mesh = mesh[tuple(accelerator.parallelism_config.fsdp_dim_names)]
    options = dict(
        mesh=mesh, reshard_after_forward=plugin.reshard_after_forward, offload_policy=plugin.cpu_offload
    )
    optimizers = [obj for obj in args if isinstance(obj, torch.optim.Optimizer)]
    for model in (obj for obj in args if isinstance(obj, nn.Module)):
        shard_ssm_modules(model, optimizers, **options)
    result = prepare(*args, device_placement=device_placement)
    prepared = result if isinstance(result, tuple) else (result,)
    for model in (obj for obj in prepared if isinstance(obj, nn.Module)):
        model.forward = accelerator.autocast()(model.forward)
    return result


def make_fsdp_plugin(precision: Precision | str):
    """accelerate's FSDP plugin with ``fsdp_mixed_precision(precision)``; its other settings come from
    the ``accelerate launch`` config (FSDP_* environment variables)."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin(mixed_precision_policy=fsdp_mixed_precision(precision))


def make_accelerator(precision: Precision | str = Precision.auto, cpu: bool = False):
    """An ``Accelerator`` with bf16/fp16 autocast (fp32 master weights) or none.

    Distributed settings (DDP, FSDP, number of processes) come from ``accelerate launch`` and its
    config file; under FSDP2 with bf16/fp16 the plugin gets an explicit policy and ``prepare`` makes the
    SSM modules fp32 units (module docstring).
    The trainer applies gradient accumulation itself, so accelerate's stays 1.
    Without a GPU the CPU is chosen explicitly: only then do launched processes join one gloo
    group (accelerate would otherwise start each one as a lone single-process run).
    """
    from accelerate import Accelerator

    cpu = cpu or not torch.cuda.is_available()
    resolved = resolve_precision(precision, cpu)
    fsdp2 = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    fsdp2 = fsdp2 and os.environ.get("FSDP_VERSION", "1") == "2" and not cpu and resolved != Precision.fp32
    plugin = make_fsdp_plugin(resolved) if fsdp2 else None
    accelerator = Accelerator(cpu=cpu, mixed_precision=_ACCELERATE_PRECISION[resolved], fsdp_plugin=plugin)
    if fsdp2 and accelerator.is_fsdp2:
        accelerator.prepare = partial(_prepare_with_fp32_ssm_units, accelerator, accelerator.prepare)
    return accelerator


def set_fp32_matmul_precision(tf32: bool) -> None:
    """``trainer.tf32``: fp32 matrix products and cuDNN convolutions on TF32 tensor cores, or in full fp32
    (the products' PyTorch default; cuDNN's own default, TF32, is left alone then). Process-wide."""
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    if tf32:
        torch.backends.cudnn.allow_tf32 = True


def configure_logging(level: int = logging.INFO) -> None:
    """Send INFO records (the metric lines) to stderr when nothing else has configured logging (Hydra's
    own set-up, a user's handlers are left as they are)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mamba_lm").setLevel(min(level, logging.getLogger("mamba_lm").getEffectiveLevel()))
