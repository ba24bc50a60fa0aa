"""End-to-end training throughput: tokens/s, MFU and peak memory of the trainer's step (GPU).

    python benchmarks/train_throughput.py --out train_throughput.json
    python benchmarks/train_throughput.py --models mamba_130m --shapes 2048x16 --steps 20
    python benchmarks/train_throughput.py --models mamba_130m,transformer_125m --paths fused,unfused
    accelerate launch --config_file configs/accelerate/ddp.yaml --num_processes 2 \
        benchmarks/train_throughput.py --out ddp2.json --compare one_gpu.json

Each (model, seqlen x batch) runs the trainer's own ``TrainStep`` (forward, cross-entropy,
backward, clip at 1.0, fused AdamW step) under ``accelerate`` with bf16 autocast and fp32
weights, on random tokens, so the numbers compare with ANCHORS.md's end-to-end table (32,768
tokens per step). Models come from ``mamba_lm.configs`` (vocab 50277); nothing here needs Hydra,
datasets or wandb. ``--paths fused,unfused`` also times the unfused reference path
(``set_fused(model, False)``: separate add and norm, the Mamba mixer as composed autograd ops, logits
then cross-entropy). ``--device cpu --precision fp32`` with tiny models smoke-tests the script.

Under ``accelerate launch`` (DDP or FSDP from its config file) every process runs the same step on its
own batch; tokens/s is per process (per GPU: the mean over processes, its slowest process beside it) and
peak memory the largest of any process, so a row compares directly with a one-GPU run of the same batch:
``--compare ONE.json`` adds the ratio to that run's tokens/s. Only the main process prints and writes.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm import build_model, configs  # noqa: E402
from mamba_lm.files import atomic_write_text  # noqa: E402
from mamba_lm.modules.fusion import set_fused  # noqa: E402
from mamba_lm.trainer import (  # noqa: E402
    OptimConfig,
    TrainStep,
    build_optimizer,
    make_accelerator,
    model_flops_per_token,
    peak_flops_per_device,
)

DEFAULT_MODELS = "mamba_130m,mamba_370m,transformer_125m,transformer_350m"
DEFAULT_SHAPES = "2048x16,8192x4"  # seqlen x batch: 32,768 tokens per step, as in ANCHORS.md
PATHS = ("fused", "unfused")


@dataclass
class Measurement:
    model: str
    path: str
    params: int
    seqlen: int
    batch: int
    tokens_per_s: float | None
    step_ms: float | None
    mfu: float | None
    peak_memory_gb: float | None
    flops_per_token: float
    error: str | None = None
    processes: int = 1
    slowest_tokens_per_s: float | None = None  # the slowest process's (processes > 1)


def random_batch(batch: int, seqlen: int, vocab: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random LM batch: input_ids and labels (B, L) int64."""
    tokens = torch.randint(0, vocab, (batch, seqlen + 1), device=device)
    return {"input_ids": tokens[:, :-1], "labels": tokens[:, 1:]}


def measure(
    accelerator, name: str, path: str, seqlen: int, batch: int, steps: int, warmup: int, compile_model: bool
):
    """Time ``steps`` training steps after ``warmup`` untimed ones; returns a Measurement."""
    device = accelerator.device
    config = configs.get(name)
    torch.manual_seed(0)
    model = set_fused(build_model(config, device=device), path == "fused")
    params = sum(p.numel() for p in model.parameters())
    flops_per_token = model_flops_per_token(model, seqlen)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-4))
    prepared_model, prepared_optimizer = accelerator.prepare(model, optimizer)
    forward_model = torch.compile(prepared_model) if compile_model else prepared_model
    train_step = TrainStep(accelerator, forward_model, prepared_optimizer, task="lm", grad_clip=1.0)
    batches = [random_batch(batch, seqlen, config.vocab_size, device) for _ in range(2)]
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for i in range(warmup):
            train_step([batches[i % 2]])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for i in range(steps):
            train_step([batches[i % 2]])  # ends in .item(): the step is complete when it returns
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        memory = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
        per_process = across_processes(accelerator, steps * batch * seqlen / elapsed, memory or 0.0)
        tokens_per_s = sum(t for t, _ in per_process) / len(per_process)
        memory = max(m for _, m in per_process) if memory is not None else None
        peak = peak_flops_per_device(device)
        return Measurement(
            model=name,
            path=path,
            params=params,
            seqlen=seqlen,
            batch=batch,
            tokens_per_s=tokens_per_s,
            step_ms=1e3 * batch * seqlen / tokens_per_s,  # the mean process's
            mfu=tokens_per_s * flops_per_token / peak if peak else None,
            peak_memory_gb=memory,
            flops_per_token=flops_per_token,
            processes=len(per_process),
            slowest_tokens_per_s=min(t for t, _ in per_process) if len(per_process) > 1 else None,
        )
    finally:
        del train_step, forward_model, prepared_model, prepared_optimizer, model, optimizer
        accelerator.free_memory()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def across_processes(accelerator, tokens_per_s: float, memory_gb: float) -> list[tuple[float, float]]:
    """(tokens/s, peak memory GB) of every process, gathered from each (one process: its own)."""
    if accelerator.num_processes == 1:
        return [(tokens_per_s, memory_gb)]
    mine = torch.tensor([[tokens_per_s, memory_gb]], dtype=torch.float64, device=accelerator.device)
    return [tuple(row) for row in accelerator.gather(mine).tolist()]


def compare_with(rows: list[Measurement], path: Path) -> list[str]:
    """Lines 'model path seqlen x batch: R x of PATH's tokens/s' for the rows PATH also measured."""
    theirs = {
        (r["model"], r["path"], r["seqlen"], r["batch"]): r["tokens_per_s"]
        for r in json.loads(path.read_text())["results"]
    }
    lines = []
    for r in rows:
        other = theirs.get((r.model, r.path, r.seqlen, r.batch))
        if r.tokens_per_s and other:
            ratio = r.tokens_per_s / other
            lines.append(
                f"{r.model} {r.path} {r.seqlen} x {r.batch}: {ratio:.3f} x {path.name}'s tokens/s per process"
            )
    return lines


def format_table(rows: list[Measurement]) -> str:
    header = f"{'model':<18} {'path':<8} {'params':>8} {'seqlen x batch':>15} {'tokens/s':>10} "
    header += f"{'ms/step':>9} {'MFU':>6} {'peak mem':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        start = f"{r.model:<18} {r.path:<8} {r.params / 1e6:>7.1f}M {f'{r.seqlen} x {r.batch}':>15}"
        if r.error:
            lines.append(f"{start}   {r.error}")
            continue
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "-"
        memory = f"{r.peak_memory_gb:.1f} GB" if r.peak_memory_gb is not None else "-"
        lines.append(f"{start} {r.tokens_per_s:>10,.0f} {r.step_ms:>9.1f} {mfu:>6} {memory:>9}")
    return "\n".join(lines)


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """'2048x16,8192x4' -> [(2048, 16), (8192, 4)] (seqlen x batch)."""
    shapes = []
    for item in text.split(","):
        try:
            seqlen, batch = (int(part) for part in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--shapes: expected SEQLENxBATCH items like 2048x16, got {item!r}") from None
        shapes.append((seqlen, batch))
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default=DEFAULT_MODELS, help=f"names from mamba_lm.configs ({DEFAULT_MODELS})"
    )
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="SEQLENxBATCH list (default %(default)s)")
    parser.add_argument("--paths", default="fused", help="fused and/or unfused, comma-separated")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, autotuning)")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--compare", type=Path, help="a JSON of this script (e.g. one GPU): print the ratios")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in configs.names()]
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; known: {', '.join(configs.names())}")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or any(p not in PATHS for p in paths):
        raise SystemExit(f"--paths: a comma-separated list of {PATHS}, got {args.paths!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: pass --device cpu (with tiny models) to smoke-test the script")

    accelerator = make_accelerator(args.precision, cpu=args.device == "cpu")
    rows = []
    for name in names:
        for seqlen, batch in parse_shapes(args.shapes):
            for path in paths:
                try:
                    row = measure(
                        accelerator, name, path, seqlen, batch, args.steps, args.warmup, args.compile
                    )
                except torch.OutOfMemoryError:
                    params = sum(
                        p.numel() for p in build_model(configs.get(name), device="meta").parameters()
                    )
                    row = Measurement(
                        name, path, params, seqlen, batch, None, None, None, None, 0.0, error="out of memory"
                    )
                rows.append(row)
                if accelerator.is_main_process:
                    print(format_table([row]).splitlines()[-1], flush=True)

    if not accelerator.is_main_process:
        return
    print()
    if accelerator.num_processes > 1:
        print(f"{accelerator.num_processes} processes ({accelerator.distributed_type}): tokens/s per process")
    print(format_table(rows))
    if args.compare:
        print("\n".join(compare_with(rows, args.compare)))
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    report = {
        "benchmark": "train_throughput",
        "device": device_name,
        "processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "torch": torch.__version__,
        "precision": args.precision,
        "compile": args.compile,
        "steps": args.steps,
        "warmup": args.warmup,
        "results": [asdict(r) for r in rows],
    }
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
