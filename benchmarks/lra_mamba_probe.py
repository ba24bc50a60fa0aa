"""Where the Mamba LRA training step spends its time, and which scan launch plan suits it (GPU).

    python benchmarks/lra_mamba_probe.py                      # lra/mamba/listops_v3 beside lra/s4/listops_v3
    python benchmarks/lra_mamba_probe.py --plans seg_len=256 block_d=32 block_d=32,bwd_block_d=32 --steps 20

The Mamba LRA models are narrow (ListOps: d_inner 128) with batch 50: batch x channel blocks fill a small
part of the GPU, so the scan's launch plan cuts the sequence into segments (``triton_scan.plan``). This
probe times the trainer's step (``TrainStep``: forward, loss, backward, AdamW; fp32 with TF32 as the
experiments) on random ListOps-shaped batches (lengths drawn in [--min-len, --max-len], each batch padded
to its longest row as the loader does) for:

- ``s4``: the S4 baseline's model (``--s4-experiment``), the yardstick;
- ``mamba``: the Mamba model (``--experiment``) with the plan as it is;
- ``mamba[FIELD=VALUE,...]``: the same with those ``ScanConfig`` fields of the plan replaced (``seg_len`` is
  a cap: the plan's own length where that is shorter).

Every variant starts from the same weights and reads the same batches; the Mamba variants' first losses
must agree (the plan changes only the order of additions). Then one profiled step of ``mamba``
by kernel family (the families of ``profile_step.py``), and a table: ms per step, GPU kernel ms of one
profiled step (what a second run sharing the GPU competes for), steps/s, ratio to s4.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lra_step import build_train_step, compose, initial_weights, time_steps  # noqa: E402
from mamba_lm.kernels.selective_scan import triton_scan  # noqa: E402
from profile_step import kernel_families  # noqa: E402

LISTOPS_VOCAB, LISTOPS_CLASSES = 16, 10


def random_batches(count: int, batch: int, min_len: int, max_len: int, device: str) -> list[dict]:
    """ListOps-shaped batches: token ids, labels, lengths; each padded (token 0) to its longest row."""
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        lengths = torch.randint(min_len, max_len + 1, (batch,), generator=gen)
        ids = torch.randint(1, LISTOPS_VOCAB, (batch, int(lengths.max())), generator=gen)
        ids[torch.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0
        labels = torch.randint(0, LISTOPS_CLASSES, (batch,), generator=gen)
        batch_tensors = {"input_ids": ids, "labels": labels, "lengths": lengths}
        batches.append({key: value.to(device) for key, value in batch_tensors.items()})
    return batches


def build(experiment: str):
    """(run config, model values, initial weights) of an experiment's model for ListOps-shaped data."""
    run, _, values = compose(experiment, [])
    return run, *initial_weights(run, values, "classification", LISTOPS_VOCAB, LISTOPS_CLASSES)


@contextmanager
def scan_plan(changes: dict[str, int]):
    """Within the block, triton_scan.plan returns its plan with ``changes`` applied (ScanConfig fields by
    name; seg_len is a cap: never longer than the plan's, a multiple of the chunk length)."""
    original = triton_scan.plan

    def plan(*args, **kwargs):
        cfg = original(*args, **kwargs)
        fields = dict(changes)
        if "seg_len" in fields:
            fields["seg_len"] = max(cfg.chunk_len, min(cfg.seg_len, fields["seg_len"]))
        return dataclasses.replace(cfg, **fields)

    triton_scan.plan = plan
    try:
        yield
    finally:
        triton_scan.plan = original


def parse_plan(text: str) -> dict[str, int]:
    """ "block_d=32,seg_len=256" -> {"block_d": 32, "seg_len": 256}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    return {key: int(value) for key, value in pairs}


def time_variant(run, values, state, batches, warmup: int, plan_changes: dict):
    """(first loss, ms per timed step, per-family GPU ms of one profiled step (the last batch))."""
    step = build_train_step(run, values, state, "cuda", run.trainer.tf32)
    with scan_plan(plan_changes):
        first, ms = time_steps(step, batches, warmup, "cuda")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            step([batches[-1]])
            torch.cuda.synchronize()
    return first, ms, kernel_families(prof)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", default="lra/mamba/listops_v3")
    parser.add_argument("--s4-experiment", default="lra/s4/listops_v3")
    parser.add_argument(
        "--plans",
        nargs="*",
        default=["block_d=32", "block_d=32,bwd_block_d=32", "block_d=16,bwd_block_d=16"],
        help="scan plan variants to try, each FIELD=VALUE[,FIELD=VALUE] of ScanConfig",
    )
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--min-len", type=int, default=500)
    parser.add_argument("--max-len", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("lra_mamba_probe.py needs a CUDA GPU")
    batches = random_batches(args.warmup + args.steps, args.batch, args.min_len, args.max_len, "cuda")
    rows = []
    s4_run, s4_values, s4_state = build(args.s4_experiment)
    _, s4_ms, s4_families = time_variant(s4_run, s4_values, s4_state, batches, args.warmup, {})
    rows.append(("s4", None, s4_ms, sum(s4_families.values())))
    run, values, state = build(args.experiment)
    first, ms, families = time_variant(run, values, state, batches, args.warmup, {})
    rows.append(("mamba", first, ms, sum(families.values())))
    for text in args.plans:
        name = f"mamba[{text}]"
        changes = parse_plan(text)
        loss, plan_ms, plan_families = time_variant(run, values, state, batches, args.warmup, changes)
        if abs(loss - first) > 1e-3 * abs(first):
            raise SystemExit(f"{name}: first loss {loss} differs from mamba's {first}")
        rows.append((name, loss, plan_ms, sum(plan_families.values())))
    total = sum(families.values())
    print(f"\none profiled mamba step: {total:.1f} ms of kernels")
    for name, family_ms in sorted(families.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<42} {family_ms:>8.2f} {family_ms / total:>7.1%}")
    header = f"{'variant':<34} {'first loss':>10} {'ms/step':>9} {'kernel ms':>9} {'steps/s':>8} {'vs s4':>7}"
    print("\n" + header)
    for name, loss, step_ms, kernel_ms in rows:
        loss_text = f"{loss:.4f}" if loss is not None else "-"
        print(
            f"{name:<34} {loss_text:>10} {step_ms:>9.2f} {kernel_ms:>9.2f} {1000 / step_ms:>8.1f} "
            f"{s4_ms / step_ms:>7.2f}"
        )


if __name__ == "__main__":
    main()
