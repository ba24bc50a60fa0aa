"""The selective scan's backward variants side by side (GPU): correctness, then time, then a table.

    python benchmarks/scan_bwd_variants.py                         # every variant, ~2-3 minutes
    python benchmarks/scan_bwd_variants.py --variants stored-c16-pf stored-d32-c16-pf-defer

Variants are the entries of `BWD_VARIANTS` in kernels/selective_scan/triton_scan.py; the plan uses
the one named by `BWD_VARIANT` there (flip that one constant to adopt another). For each variant:

0. compile every variant's kernels in worker processes (one per variant, up to 8 at a time).
1. correctness: bf16 inputs in the model's layout (batch 1, dim 1536, seqlen 1024, with an initial
   state) against the fp32 sequential reference: relative error (L2) of the output, the last
   state and every gradient. A variant passes at <= 2e-2; bf16 noise is ~2e-3, an indexing bug is O(1).
2. time (median of triton's do_bench): forward, and backward alone (the autograd backward of one
   forward: adjoint pass, combine, backward kernel, partial sums), at
   A = Mamba-130M's layer: batch 16, dim 1536, seqlen 2048, channel-last bf16 (the training step
       runs this 24 times);
   B = the ANCHORS.md scan shape: batch 32, dim 2048, seqlen 2048.

Predictions, written before any of these variants ran (ms, A fwd+bwd / B fwd+bwd); outcomes in
benchmarks/RESULTS.md (2026-12-01, item 5). "recompute" was the backward kernel before these (it
rebuilt each sub-block's states in registers; retired after those measurements). Measured
before: A's backward kernel 3.67 ms + adjoint 0.42 ms, forward 2 x 0.45 ms -> A ~5.1;
B 9.09 (v4 table, forward 1.48). Reasoning: "stored" drops phase 2's forward recompute (static
FFMA+FMUL 642 vs 1064 in benchmarks/kernel_report.py) and its spills (255 registers with a 208-byte
stack -> 255 and none; 168 at 32 channels, 203 with deferred sums), but writes and reads 128 bytes
of fp32 state per channel-step; with chunk 64 the scratch in flight (~1000 programs x 256 KB) is
far larger than the 50 MB L2, so that traffic goes to HBM (A: 6.4 GB ~1.5 ms, B: 17 GB ~4 ms):
chunk 16 ("c16") is meant to keep it in L2, at the price of 4x the checkpoints the forward saves
(200 MB instead of 50 MB per Mamba-130M layer); tiles of 16 ("t16") keep chunk 64's checkpoints
and add a third, light walk (states only) per chunk instead. The kernels look latency-bound (A's
backward at 3.67 ms against ~0.5 ms of MUFU or FMA throughput), with 6 dependent shuffle rounds
per step for each channel sum: "defer" moves them off the step's chain, "d32" (32 channels per
program, one per thread) gives more warps per SM; "pf" reads the state back a step ahead; "fold"
adds the two channels a thread holds (at 64 per program) before the shuffle rounds.
    stored-pf                3.9 / 6.9   (HBM traffic bound)
    stored-c16-pf            3.4 / 5.9
    stored-c16-fold          3.3 / 5.7   (half the shuffles: a thread's 2 channels added first)
    stored-t16-pf            3.6 / 6.3   (the extra walk costs ~0.2-0.4 ms at A)
    stored-d32-c16-pf        3.4 / 5.8
    stored-d32-pf-defer      3.5 / 6.2
    stored-d32-c16-pf-defer  3.0 / 5.2   (best guess)
    stored-d32-t16-pf-defer  3.2 / 5.6
Registers on sm_90 (benchmarks/kernel_report.py --kernels bwd --variant NAME, bf16): recompute (retired) 255
with a 208-byte spill stack; stored(-pf) 255, no spills; stored-c16-fold 255, no spills, 32
shuffles instead of 66; stored-t16-pf 255, 16-byte stack; d32: 168 (pf), 203 (pf-defer), 202
(t16-pf-defer).
Most of the run is compiling (two backward kernels per variant: with and without a carried-in
adjoint), hence step 0; --variants trims the list.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import time
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mamba_lm.kernels import selective_scan_ref  # noqa: E402
from mamba_lm.kernels.selective_scan import triton_scan  # noqa: E402
from scan import make_inputs, rel_err, time_ms  # noqa: E402

SHAPES = {"A": (16, 1536, 2048), "B": (32, 2048, 2048)}  # (batch, dim, seqlen)
DSTATE = 16
PASS = 2e-2
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state")


def leaves_of(inputs: dict, fp32=False) -> dict:
    return {
        k: (v.detach().float() if fp32 else v.detach()).clone().requires_grad_()
        for k, v in inputs.items()
        if k in GRAD_NAMES and torch.is_tensor(v)
    }


def run_scan(variant: str | None, inputs: dict, leaves: dict):
    """(out, last_state) of the Triton scan with the plan of `variant` (None: the fp32 reference)."""
    args = {**inputs, **leaves}
    if variant is None:
        return selective_scan_ref(**args, return_last_state=True)
    u = args["u"]
    cfg = triton_scan.plan(u.shape[0], u.shape[1], 1, DSTATE, u.shape[2], u.device, bwd_variant=variant)
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus", "initial_state")
    return triton_scan.selective_scan_triton(*(args.get(n) for n in names), config=cfg)


def gradients(variant, inputs, weights, fp32=False) -> dict:
    leaves = leaves_of(inputs, fp32)
    out, last = run_scan(variant, inputs, leaves)
    ((out.float() * weights[0]).sum() + (last.float() * weights[1]).sum()).backward()
    result = {"out": out.detach(), "last_state": last.detach()}
    result.update({f"d{k}": v.grad for k, v in leaves.items()})
    return result


def worst(got: dict, ref: dict) -> tuple[float, str]:
    errs = {k: rel_err(got[k], ref[k]) for k in ref}
    name = max(errs, key=lambda k: errs[k] if errs[k] == errs[k] else float("inf"))  # NaN counts as worst
    return errs[name], name


def correctness_inputs():
    """bf16 inputs (1, 1536, 1024) with an initial state, and weights for out and last_state. The
    sizes keep the launch arguments' divisibility as at shape A, so that the kernels compiled here
    are the ones A runs (Triton specialises integer arguments on divisibility by 16)."""
    batch, dim, seqlen = 1, 1536, 1024
    inputs = make_inputs(batch, seqlen, dim=dim, seed=3)
    inputs["initial_state"] = torch.randn(batch, dim, DSTATE, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(4)
    weights = (
        torch.randn(batch, dim, seqlen, device="cuda", generator=g),
        torch.randn(batch, dim, DSTATE, device="cuda", generator=g),
    )
    return inputs, weights


def compile_variant(variant: str) -> str:
    """Run `variant` once at the correctness size and at a one-segment size like B (in a worker
    process), so that its kernels land in Triton's on-disk cache."""
    small, weights = correctness_inputs()
    gradients(variant, small, weights)  # dout seqlen-contiguous, as in the checks
    one_segment = make_inputs(32, 1024, dim=2048, seed=1)
    for inputs in (small, one_segment):  # dout channel-contiguous, as in the timed backward
        out, _ = run_scan(variant, inputs, leaves_of(inputs))
        out.backward(torch.ones_like(out))
    torch.cuda.synchronize()
    return variant


def compile_in_parallel(variants: list[str]) -> None:
    """Compiling is most of the run's time and runs on one core per process: one process per variant."""
    workers = max(1, min(len(variants), (os.cpu_count() or 2) // 2, 8))
    start = time.time()
    try:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            for variant in pool.map(compile_variant, variants):
                print(f"compiled {variant} ({time.time() - start:.0f} s)", flush=True)
    except Exception as e:  # the main process then compiles as it goes
        print(f"parallel compilation failed ({type(e).__name__}: {str(e)[:200]}); compiling serially")


def time_variant(variant: str, inputs: dict) -> tuple[float, float]:
    """(forward ms, backward ms) of one scan call."""
    leaves = leaves_of(inputs)
    fwd = time_ms(lambda: run_scan(variant, inputs, leaves), warmup=10, rep=60)
    out, _ = run_scan(variant, inputs, leaves)
    dout = torch.randn_like(out)

    def backward():
        for v in leaves.values():
            v.grad = None
        out.backward(dout, retain_graph=True)

    return fwd, time_ms(backward, warmup=10, rep=60)


def main() -> None:
    p = argparse.ArgumentParser()
    names = list(triton_scan.BWD_VARIANTS)
    p.add_argument("--variants", nargs="+", default=names, choices=names)
    p.add_argument("--serial-compile", action="store_true", help="no compiling worker processes")
    args = p.parse_args()
    if not args.serial_compile:
        compile_in_parallel(args.variants)
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}; "
          f"plan's BWD_VARIANT = {triton_scan.BWD_VARIANT!r}", flush=True)  # fmt: skip

    small, weights = correctness_inputs()
    ref = gradients(None, small, weights, fp32=True)
    timed = {}
    for name, (batch, dim, seqlen) in SHAPES.items():
        timed[name] = make_inputs(batch, seqlen, dim=dim, seed=1)
    rows = []
    for variant in args.variants:
        row = {"variant": variant}
        try:
            row["err"], row["err_name"] = worst(gradients(variant, small, weights), ref)
            for name, inputs in timed.items():
                row[f"{name}_fwd"], row[f"{name}_bwd"] = time_variant(variant, inputs)
        except Exception as e:  # a variant that fails to compile or run is reported, not fatal
            row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        print(row, flush=True)
        rows.append(row)
        torch.cuda.empty_cache()

    print(f"\nA = {SHAPES['A']}, B = {SHAPES['B']} (batch, dim, seqlen), bf16 channel-last; ms per scan call."
          f"\nerr: worst relative error vs the fp32 reference (1 x 1536 x 1024)."
          f"\n| variant | err (grad) | A fwd | A bwd | A fwd+bwd | B fwd | B bwd | B fwd+bwd | ok |"
          f"\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        if "error" in r:
            print(f"| {r['variant']} | failed: {r['error'][:120]} |")
            continue
        ok = r["err"] <= PASS
        print(
            f"| {r['variant']} | {r['err']:.1e} ({r['err_name']}) | "
            f"{r['A_fwd']:.2f} | {r['A_bwd']:.2f} | {r['A_fwd'] + r['A_bwd']:.2f} | "
            f"{r['B_fwd']:.2f} | {r['B_bwd']:.2f} | {r['B_fwd'] + r['B_bwd']:.2f} | {'yes' if ok else 'NO'} |"
        )


if __name__ == "__main__":
    main()
