"""Selective-scan benchmark (GPU): our Triton kernel against flash attention and the floors.

    python benchmarks/scan.py --out scan.json            # the ANCHORS.md table
    python benchmarks/scan.py --sweep --seqlens 2048     # launch configurations side by side

Shape: dim 2048, d_state 16, bf16, batch * seqlen = 65,536 tokens. Inputs are laid out as the
model produces them: (batch, seqlen, dim) memory viewed as (batch, dim, seqlen). "L-contig" rows
time the same kernel on the reference package's layout (seqlen contiguous) for comparison.
The yardstick in the same run: flash attention through torch SDPA (causal, 16 heads x 64), the
PyTorch sequential reference at short lengths, and mamba_ssm's CUDA kernel when importable.
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
from mamba_lm.kernels import selective_scan_fn, selective_scan_ref  # noqa: E402
from mamba_lm.kernels.selective_scan.triton_scan import plan, selective_scan_triton  # noqa: E402

from mamba_lm.files import atomic_write_text  # noqa: E402

DIM, DSTATE, TOKENS = 2048, 16, 65536
COPY_BW = 4.25e12  # bytes/s, device copy (ANCHORS.md)
EXP_RATE = 4.0e12  # exp2/s (ANCHORS.md)


def make_inputs(batch, seqlen, dim=DIM, dstate=DSTATE, layout="model", dtype=torch.bfloat16, seed=0):
    """Scan inputs as Mamba produces them; layout 'model' = channel-contiguous, else seqlen-contiguous."""
    g = torch.Generator(device="cuda").manual_seed(seed)

    def act(scale=1.0):
        if layout == "model":
            x = torch.randn(batch, seqlen, dim, device="cuda", generator=g, dtype=dtype) * scale
            return x.transpose(1, 2)
        return torch.randn(batch, dim, seqlen, device="cuda", generator=g, dtype=dtype) * scale

    u, delta, z = act(), act(0.5), act()
    xproj = torch.randn(batch, seqlen, 2 * dstate, device="cuda", generator=g, dtype=dtype)
    B = xproj[..., :dstate].transpose(
        1, 2
    )  # (batch, dstate, seqlen), stride 1 on dstate, like x_proj's output
    C = xproj[..., dstate:].transpose(1, 2)
    A = -torch.exp(torch.rand(dim, dstate, device="cuda", generator=g))
    D = torch.randn(dim, device="cuda", generator=g)
    bias = torch.randn(dim, device="cuda", generator=g) * 0.1 - 3.0
    return dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=bias, delta_softplus=True)


def time_ms(fn, warmup=25, rep=100) -> float:
    return triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def fwd_bwd_fn(fn, inputs):
    leaves = {
        k: v.detach().requires_grad_()
        for k, v in inputs.items()
        if torch.is_tensor(v) and v.is_floating_point()
    }
    args = {**inputs, **leaves}
    out = fn(**args)
    dout = torch.randn_like(out)

    def run():
        for v in leaves.values():
            v.grad = None
        fn(**args).backward(dout)

    return run


def scan_fn(config=None):
    def fn(**kw):
        if config is None:
            return selective_scan_fn(**kw)
        kw = dict(kw)
        out, _ = selective_scan_triton(
            kw.pop("u"), kw.pop("delta"), kw.pop("A"), kw.pop("B"), kw.pop("C"), config=config, **kw
        )
        return out

    return fn


def flash_attention_ms(batch, seqlen, heads=16, head_dim=64):
    q, k, v = (
        torch.randn(batch, heads, seqlen, head_dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    )
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        fwd = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        do = torch.randn_like(o)

        def fb():
            q.grad = k.grad = v.grad = None
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(do)

        fwdbwd = time_ms(fb)
    return fwd, fwdbwd


def check_correctness() -> list[dict]:
    """Triton vs the fp32 sequential reference on fresh random inputs, output and every gradient."""
    rows = []
    for batch, seqlen, layout, dtype in [
        (2, 1000, "model", torch.float32),
        (2, 777, "lcontig", torch.bfloat16),
    ]:
        inputs = make_inputs(batch, seqlen, dim=256, layout=layout, dtype=dtype, seed=seqlen)
        h0 = torch.randn(batch, 256, DSTATE, device="cuda")
        leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items() if torch.is_tensor(v)}
        leaves["initial_state"] = h0.clone().requires_grad_()
        ref_leaves = {k: v.detach().float().clone().requires_grad_() for k, v in leaves.items()}
        out, last = selective_scan_fn(**{**inputs, **leaves}, return_last_state=True)
        ref, ref_last = selective_scan_ref(**{**inputs, **ref_leaves}, return_last_state=True)
        w, wl = torch.randn_like(ref), torch.randn_like(ref_last)
        ((out.float() * w).sum() + (last * wl).sum()).backward()
        ((ref * w).sum() + (ref_last * wl).sum()).backward()
        errs = {"out": rel_err(out, ref), "last_state": rel_err(last, ref_last)}
        errs.update({f"d{k}": rel_err(leaves[k].grad, ref_leaves[k].grad) for k in leaves})
        rows.append({"batch": batch, "seqlen": seqlen, "layout": layout, "dtype": str(dtype), **errs})
        print(f"check {layout} {dtype} L={seqlen}: " + " ".join(f"{k}={v:.1e}" for k, v in errs.items()))
    return rows


def rel_err(a, b) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seqlens", type=int, nargs="+", default=[512, 2048, 8192, 32768, 131072])
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--sweep", action="store_true", help="time launch configurations instead")
    p.add_argument("--no-check", action="store_true")
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    results = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
    }
    if not args.no_check:
        results["check"] = check_correctness()
    rows = []
    for seqlen in args.seqlens:
        batch = max(1, TOKENS // seqlen)
        inputs = make_inputs(batch, seqlen)
        if args.sweep:
            base = plan(batch, DIM, 1, DSTATE, seqlen, torch.device("cuda"))
            for overrides in SWEEP:
                cfg = dataclasses.replace(base, **overrides)
                try:
                    fwd = time_ms(lambda cfg=cfg, inputs=inputs: scan_fn(cfg)(**inputs))
                    fb = time_ms(fwd_bwd_fn(scan_fn(cfg), inputs))
                except Exception as e:  # a configuration that does not compile is reported, not fatal
                    print(f"  {cfg}: failed: {type(e).__name__}: {str(e)[:200]}")
                    continue
                rows.append({"seqlen": seqlen, "config": cfg.__dict__, "fwd_ms": fwd, "fwd_bwd_ms": fb})
                print(f"L={seqlen:6d} {cfg}: fwd {fwd:.3f} ms  fwd+bwd {fb:.3f} ms", flush=True)
            continue
        row = {"seqlen": seqlen, "batch": batch}
        row["fwd_ms"] = time_ms(lambda inputs=inputs: selective_scan_fn(**inputs))
        row["fwd_bwd_ms"] = time_ms(fwd_bwd_fn(selective_scan_fn, inputs))
        lc = make_inputs(batch, seqlen, layout="lcontig")
        row["lcontig_fwd_ms"] = time_ms(lambda lc=lc: selective_scan_fn(**lc))
        row["lcontig_fwd_bwd_ms"] = time_ms(fwd_bwd_fn(selective_scan_fn, lc))
        row["flash_fwd_ms"], row["flash_fwd_bwd_ms"] = flash_attention_ms(batch, seqlen)
        if seqlen <= 2048:
            ref_in = {k: (v.float() if torch.is_tensor(v) else v) for k, v in inputs.items()}
            row["torch_ref_fwd_ms"] = time_ms(
                lambda ref_in=ref_in: selective_scan_ref(**ref_in), warmup=1, rep=1
            )
        try:
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as mamba_scan

            row["mamba_cuda_fwd_ms"] = time_ms(lambda lc=lc: mamba_scan(**lc))
            row["mamba_cuda_fwd_bwd_ms"] = time_ms(fwd_bwd_fn(mamba_scan, lc))
        except ImportError:
            pass
        elems = batch * seqlen * DIM
        row["fwd_floor_ms"] = max(8 * elems / COPY_BW, elems * DSTATE / EXP_RATE) * 1e3
        row["fwd_bytes_per_s"] = 8 * elems / (row["fwd_ms"] * 1e-3)
        row["fwd_exps_per_s"] = elems * DSTATE / (row["fwd_ms"] * 1e-3)
        row["ratio_to_flash"] = row["fwd_bwd_ms"] / row["flash_fwd_bwd_ms"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    results["rows"] = rows
    if args.out:
        atomic_write_text(args.out, json.dumps(results, indent=1))
    if not args.sweep:
        print_table(rows)


# launch-plan overrides compared by --sweep (each against the default plan of its size)
SWEEP = [{}, {"block_d": 32}, {"bwd_block_d": 32}, {"bwd_block_d": 64}, {"sub": 4}]
REF_CUDA_RATIO = {512: 5.1, 2048: 2.57, 8192: 0.83, 32768: 0.24, 131072: 0.068}  # ANCHORS.md


def print_table(rows):
    print("\n| seqlen | batch | fwd ms | fwd+bwd ms | L-contig fwd+bwd | flash fwd+bwd | ours/flash | "
          "ref CUDA/flash (ANCHORS) | speed-up vs ref CUDA | fwd exps/s | fwd B/s |")  # fmt: skip
    print("|" + "---|" * 11)
    for r in rows:
        ref_ratio = REF_CUDA_RATIO.get(r["seqlen"], float("nan"))
        print(
            f"| {r['seqlen']} | {r['batch']} | {r['fwd_ms']:.2f} | {r['fwd_bwd_ms']:.2f} | "
            f"{r['lcontig_fwd_bwd_ms']:.2f} | {r['flash_fwd_bwd_ms']:.2f} | {r['ratio_to_flash']:.3f} | "
            f"{ref_ratio} | {ref_ratio / r['ratio_to_flash']:.2f}x | {r['fwd_exps_per_s'] / 1e12:.2f} T | "
            f"{r['fwd_bytes_per_s'] / 1e12:.2f} T |"
        )


if __name__ == "__main__":
    main()
