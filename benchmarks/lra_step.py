"""The training step of an LRA experiment, timed in several variants on the same batches (GPU).

    python benchmarks/lra_step.py --experiment lra/s4/listops_v3
    python benchmarks/lra_step.py --experiment lra/s4/pathfinder_v3 --variants eager,compile

The step is the trainer's (``TrainStep``: forward, loss, backward, clipping, the optimizer) on the
experiment's own model, optimizer, precision and training batches (its data cache is built first when
missing). Variants:

- ``eager``: as ``train.py`` runs it (the Triton kernels on, ``trainer.tf32`` as the experiment sets it);
- ``torch-kernels``: every Triton path off (``MAMBA_LM_TRITON=0``: S4D's kernel by the PyTorch reference);
- ``fp32``: TF32 off (full fp32 matrix products);
- ``compile``: the model under ``torch.compile`` (as ``trainer.compile=true``; recompiles for new
  lengths happen in the warm-up, which draws from the same batches).

Each variant starts from the same initial weights and reads the same batches (``--warmup`` untimed,
then ``--steps`` timed). The first step's loss of each variant is checked against eager's (the variants
compute the same function up to rounding), then a table: ms per step, steps/s, ratio to eager.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm.data import build_datamodule  # noqa: E402

from mamba_lm.trainer import (  # noqa: E402
    TrainStep,
    build_model_from_dict,
    build_optimizer,
    config_dir,
    make_accelerator,
)
from mamba_lm.trainer.model_factory import fit_model_to_data  # noqa: E402
from mamba_lm.trainer.runtime import set_fp32_matmul_precision  # noqa: E402

VARIANTS = ("eager", "torch-kernels", "fp32", "compile")
LOSS_RTOL = {"fp32": 2e-2, "compile": 1e-3, "torch-kernels": 1e-3}  # TF32 against fp32 moves the loss most


def compose(experiment: str, overrides: list[str]):
    """The resolved run config (``RunConfig``), the raw Hydra config and the model's values (a plain dict)
    of ``experiment=...``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from mamba_lm.trainer.config_store import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = hydra_compose("train", overrides=[f"experiment={experiment}", *overrides])
    return OmegaConf.to_object(cfg), cfg, OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)


@contextmanager
def environment(**values: str):
    """Environment variables set for the duration of a block (the kernels' dispatch reads them per call)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def initial_weights(run, values: dict, task: str, vocab_size: int, num_classes: int) -> tuple[dict, dict]:
    """(the model's values fitted to the data, the weights every variant starts from: seeded as train.py)."""
    model_values = fit_model_to_data(values, task, vocab_size, num_classes)
    torch.manual_seed(run.seed)
    return model_values, build_model_from_dict(model_values).state_dict()


def build_train_step(run, model_values, initial_state, device: str, tf32: bool, compile_model: bool = False):
    """The trainer's step (``TrainStep``) over a fresh model loaded with ``initial_state``, as train.py builds
    it for the run's precision and optimizer."""
    set_fp32_matmul_precision(tf32)
    accelerator = make_accelerator(run.trainer.precision, cpu=device == "cpu")
    model = build_model_from_dict(model_values)
    model.load_state_dict(initial_state)
    optimizer = build_optimizer(model, run.optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    forward_model = torch.compile(model) if compile_model else model
    return TrainStep(accelerator, forward_model, optimizer, "classification", run.optim.grad_clip)


def time_steps(step, batches, warmup: int, device: str) -> tuple[float, float]:
    """(the first step's loss, the mean ms per step after ``warmup`` untimed steps) over ``batches``."""
    first_loss = step([batches[0]]).loss
    for batch in batches[1:warmup]:
        step([batch])
    synchronize(device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step([batch])
    synchronize(device)
    elapsed = time.perf_counter() - start
    return first_loss, 1000 * elapsed / max(1, len(batches) - warmup)


def run_variant(variant, run, model_values, initial_state, batches, warmup, device) -> tuple[float, float]:
    """(the first step's loss, the mean ms per timed step) of one variant."""
    tf32 = run.trainer.tf32 and variant != "fp32"
    step = build_train_step(run, model_values, initial_state, device, tf32, variant == "compile")
    triton = "0" if variant == "torch-kernels" else os.environ.get("MAMBA_LM_TRITON", "1")
    with environment(MAMBA_LM_TRITON=triton):
        return time_steps(step, batches, warmup, device)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", default="lra/s4/listops_v3")
    parser.add_argument("--variants", default="eager,torch-kernels,fp32,compile")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation, plans)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.micro_batch_size=32")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first step's loss is the check)")

    run, cfg, values = compose(args.experiment, args.overrides)
    data = build_datamodule(cfg.data, seed=run.seed)
    loader = iter(data.train_loader(run.trainer.micro_batch_size))
    batches = [next(loader) for _ in range(args.warmup + args.steps)]
    model_values, initial_state = initial_weights(run, values, data.task, data.vocab_size, data.num_classes)
    widths = sorted({int(batch["input_ids"].shape[-1]) for batch in batches})
    print(
        f"{args.experiment}: batch {run.trainer.micro_batch_size}, widths {widths[0]}-{widths[-1]} "
        f"({len(widths)} distinct), precision {run.trainer.precision.value}, tf32 {run.trainer.tf32}, "
        f"{args.warmup} + {args.steps} steps per variant on {args.device}"
    )
    results = {}
    for variant in variants:
        results[variant] = run_variant(
            variant, run, model_values, initial_state, batches, args.warmup, args.device
        )
        print(
            f"{variant}: first loss {results[variant][0]:.5f}, {results[variant][1]:.2f} ms/step", flush=True
        )
    reference = results.get("eager", next(iter(results.values())))
    for variant, (loss, _) in results.items():
        rtol = LOSS_RTOL.get(variant, 0.0)
        if abs(loss - reference[0]) > rtol * abs(reference[0]) + 1e-6:
            raise SystemExit(
                f"{variant}: first loss {loss} differs from eager's {reference[0]} by more than {rtol}"
            )
    print(f"\n{'variant':<14} {'ms/step':>9} {'steps/s':>9} {'vs eager':>9}")
    for variant, (_, ms) in results.items():
        print(f"{variant:<14} {ms:>9.2f} {1000 / ms:>9.2f} {reference[1] / ms:>8.2f}x")


if __name__ == "__main__":
    main()
