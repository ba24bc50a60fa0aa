"""Fused residual add + RMSNorm and the chunked linear cross-entropy (GPU): correctness, then timing
against the unfused PyTorch ops they replace, printed as one table.

    python benchmarks/norm_and_loss.py                 # the table (about a minute)
    python benchmarks/norm_and_loss.py --sweep         # also norm launch configurations side by side
    python benchmarks/norm_and_loss.py --compile       # also torch.compile of the unfused norm

Norm: 32768 rows, bf16 x, fp32 residual stream and weight, prenorm (y bf16 and new_residual fp32),
as the Mamba block uses it. The floor is the bytes moved at COPY_BW: forward reads x (2 B) and the
residual (4 B) and writes y (2 B) and new_residual (4 B); backward reads new_residual (4), dy (2)
and the gradient on new_residual (4) and writes dx (2) and dresidual (4).
Cross-entropy: 32768 tokens, GPT-2 vocabulary (50280), d 768, bf16 autocast, fp32 tied weight;
"3 GEMMs" times the three bf16 matmuls alone (logits, d hidden, d weight), the compute floor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm.kernels import layer_norm_ref, linear_cross_entropy, linear_cross_entropy_ref  # noqa: E402
from mamba_lm.kernels.layer_norm.triton_norm import (  # noqa: E402
    _rows,
    layer_norm_triton,
    norm_backward,
    plan,
)

from mamba_lm.files import atomic_write_text  # noqa: E402

ROWS, WIDTHS = 32768, (768, 1536, 2048)
VOCAB, D_MODEL = 50280, 768
COPY_BW = 4.25e12  # bytes/s, device copy (ANCHORS.md)
FWD_BYTES, BWD_BYTES = 2 + 4 + 2 + 4, 4 + 2 + 4 + 2 + 4  # per element, see the docstring
rows_out: list[dict] = []


def time_ms(fn, warmup=25, rep=100) -> float:
    return triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def report(section, variant, ms=None, floor_ms=None, err=None, peak_gb=None):
    row = dict(section=section, variant=variant, ms=ms, floor_ms=floor_ms, max_err=err, peak_gb=peak_gb)
    rows_out.append(row)
    cells = [f"{section:<22}", f"{variant:<46}"]
    cells.append(f"{ms:8.3f} ms" if ms is not None else " " * 11)
    cells.append(f"{floor_ms / ms:6.0%} of floor" if floor_ms and ms else " " * 14)
    cells.append(f"err {err:.2e}" if err is not None else "")
    cells.append(f"peak {peak_gb:.2f} GB" if peak_gb is not None else "")
    print("  ".join(cells), flush=True)


def max_rel_err(a, b) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()


# ---------------------------------------------------------------------------------------- norm


def norm_inputs(d, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(ROWS, d, device="cuda", generator=g, dtype=torch.bfloat16)
    residual = torch.randn(ROWS, d, device="cuda", generator=g) * 4
    weight = 1 + 0.1 * torch.randn(d, device="cuda", generator=g)
    return x, residual, weight


def unfused_norm(x, weight, residual, eps=1e-5):
    """What the model did before: the add in fp32, then torch's RMSNorm, y cast to bf16."""
    new_residual = residual + x.float()
    return F.rms_norm(new_residual, (x.shape[-1],), weight, eps).to(x.dtype), new_residual


def fused_norm(config=None):
    def fn(x, weight, residual):
        return layer_norm_triton(
            x, weight, None, residual, 1e-5, True, True, True, None, config=config
        )  # (x, weight, bias, residual, eps, prenorm, residual_in_fp32, is_rms_norm, out_dtype)

    return fn


def fwd_bwd(fn, x, residual, weight):
    leaves = [t.detach().requires_grad_() for t in (x, residual, weight)]
    y, z = fn(leaves[0], leaves[2], leaves[1])
    g = torch.Generator(device=y.device).manual_seed(1)  # the same dy, dz for every fn
    dy = torch.randn(y.shape, device=y.device, generator=g).to(y.dtype)
    dz = torch.randn(z.shape, device=z.device, generator=g).to(z.dtype)

    def run():
        for t in leaves:
            t.grad = None
        y, z = fn(leaves[0], leaves[2], leaves[1])
        torch.autograd.backward((y, z), (dy, dz))

    return run, leaves, (dy, dz)


def check_norm(x, residual, weight) -> float:
    """Largest relative error over y, new_residual and the three gradients, against the reference."""
    results = []
    for fn in (fused_norm(), lambda x, w, r: layer_norm_ref(x, w, None, r, 1e-5, True, True, True)):
        run, leaves, (dy, dz) = fwd_bwd(fn, x, residual, weight)
        run()
        y, z = fn(*(t.detach() for t in (leaves[0], leaves[2], leaves[1])))
        results.append([y, z] + [t.grad for t in leaves])
    return max(max_rel_err(a, b) for a, b in zip(*results))


def bench_norm(d, sweep, compile_baseline):
    x, residual, weight = norm_inputs(d)
    sec = f"rms_norm {ROWS}x{d}"
    n = ROWS * d
    fwd_floor, bwd_floor = n * FWD_BYTES / COPY_BW * 1e3, n * BWD_BYTES / COPY_BW * 1e3
    err = check_norm(x, residual, weight)
    report(sec, "fused fwd", time_ms(lambda: fused_norm()(x, weight, residual)), fwd_floor, err)
    report(sec, "torch add + F.rms_norm fwd", time_ms(lambda: unfused_norm(x, weight, residual)), fwd_floor)
    variants = [("fused", fused_norm()), ("torch add + F.rms_norm", unfused_norm)]
    if compile_baseline:
        variants.append(("torch.compile(add + rms_norm)", torch.compile(unfused_norm)))
        report(sec, "compiled fwd", time_ms(lambda: variants[-1][1](x, weight, residual)), fwd_floor)
    for name, fn in variants:
        run, _, _ = fwd_bwd(fn, x, residual, weight)
        report(sec, f"{name} fwd+bwd", time_ms(run), fwd_floor + bwd_floor)

    # The backward kernel alone, from a saved forward (default plan, then the sweep).
    cfg = plan(ROWS, d, x.device)
    y, z = fused_norm()(x, weight, residual)
    rstd = torch.rsqrt(z.square().mean(-1) + 1e-5)
    dy, dz = torch.randn_like(y), torch.randn_like(z)

    def bwd(c):
        return lambda: norm_backward(
            _rows(dy), _rows(dz), z, weight, False, None, rstd, x.dtype, torch.float32, c
        )

    report(sec, f"fused bwd kernel {cfg.bwd_block_m}r {cfg.bwd_num_warps}w {cfg.bwd_programs}p",
           time_ms(bwd(cfg)), bwd_floor)  # fmt: skip
    if not sweep:
        return
    for block_m in (1, 2, 4, 8, 16):
        for warps in (2, 4, 8, 16):
            c = dataclasses.replace(cfg, block_m=block_m, num_warps=warps)
            if block_m * triton.next_power_of_2(d) > 32768:
                continue
            report(sec, f"  fwd {block_m} rows {warps} warps",
                   time_ms(lambda c=c: fused_norm(c)(x, weight, residual)), fwd_floor)  # fmt: skip
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    for block_m in (1, 2, 4):
        for warps in (4, 8):
            for per_sm in (2, 4, 8):
                c = dataclasses.replace(
                    cfg, bwd_block_m=block_m, bwd_num_warps=warps, bwd_programs=per_sm * sms
                )
                report(sec, f"  bwd {block_m} rows {warps} warps {per_sm}/SM", time_ms(bwd(c)), bwd_floor)


# ------------------------------------------------------------------------------- cross-entropy


def three_gemms_ms(hidden, weight) -> float:
    """The bf16 matmuls of the loss's forward and backward: logits, d hidden, d weight."""
    logits = hidden @ weight.t()
    return time_ms(lambda: (hidden @ weight.t(), logits @ weight, logits.t() @ hidden), 3, 20)


def bench_cross_entropy(n_tokens=ROWS):
    sec = f"CE {n_tokens}x{VOCAB}x{D_MODEL}"
    g = torch.Generator(device="cuda").manual_seed(0)
    hidden = torch.randn(n_tokens, D_MODEL, device="cuda", generator=g, dtype=torch.bfloat16)
    weight = torch.randn(VOCAB, D_MODEL, device="cuda", generator=g) * 0.05
    labels = torch.randint(0, VOCAB, (n_tokens,), device="cuda", generator=g)
    labels[::50] = -100
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()

    def step(fn, **options):
        def run():
            h.grad = w.grad = None
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss_sum, count, correct = fn(h, w, labels, count_correct=True, **options)
            (loss_sum / count).backward()
            return loss_sum.detach(), correct

        return run

    def measured(run):
        """(ms, peak GB above what was allocated before, (loss, correct, dh, dw))."""
        run()
        torch.cuda.synchronize()
        h.grad = w.grad = None
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        loss, correct = run()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 1e9
        result = (loss, correct, h.grad.clone(), w.grad.clone())
        return time_ms(run, warmup=3, rep=20), peak, result

    ref_ms, ref_peak, ref = measured(step(linear_cross_entropy_ref))
    report(sec, "3 GEMMs alone", three_gemms_ms(hidden, weight.bfloat16()))
    report(sec, "F.linear + F.cross_entropy", ref_ms, None, None, ref_peak)
    for chunk in (None, 2048, 8192, 16384):
        ms, peak, got = measured(step(linear_cross_entropy, chunk_size=chunk))
        err = max(max_rel_err(got[0], ref[0]), max_rel_err(got[2], ref[2]), max_rel_err(got[3], ref[3]))
        hits = f" (argmax hits {int(got[1])} vs {int(ref[1])})" if chunk is None else ""
        report(sec, f"chunked CE, chunk {chunk or 'default'}{hits}", ms, None, err, peak)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        eval_ms = time_ms(lambda: linear_cross_entropy(hidden, weight, labels, count_correct=True), 3, 20)
    report(sec, "chunked CE, no grad (eval)", eval_ms)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweep", action="store_true", help="norm launch configurations side by side")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the unfused norm")
    parser.add_argument("--out", type=Path, help="write the rows as JSON")
    args = parser.parse_args()
    assert torch.cuda.is_available(), "a GPU benchmark"
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
    for d in WIDTHS:
        bench_norm(d, args.sweep, args.compile)
    bench_cross_entropy()
    if args.out:
        atomic_write_text(args.out, json.dumps(rows_out, indent=1))


if __name__ == "__main__":
    main()
