"""Causal depthwise convolution benchmark (GPU): the Triton kernels against the copy-bandwidth floor.

    python benchmarks/causal_conv1d.py              # correctness, then the timing table

Inputs as Mamba produces them: x is the first half of a (batch, seqlen, 2 * dim) bf16 Linear output
viewed as (batch, dim, seqlen); width 4, bias, SiLU. The forward moves 2 bytes in and 2 out per
element, the backward 4 in (x, dy) and 2 out (dx) (its two passes add g: 2 out + 2 in, 4 with g in
fp32; GB/s counts only the 6 bytes); "floor" is the 4 + 2 bytes at the measured device
copy bandwidth. Rows: the planned tiles, tile variants, seqlen-contiguous x, and the PyTorch path
(shifted multiply-adds, what the model ran before). Every variant is checked against the reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm.kernels import causal_conv1d_ref  # noqa: E402
from mamba_lm.kernels.depthwise_conv.torch_conv import causal_conv1d_torch  # noqa: E402
from mamba_lm.kernels.depthwise_conv.triton_conv import (  # noqa: E402
    ConvConfig,
    backward_dx,
    backward_gate,
    conv_backward,
    conv_forward,
    plan,
)

SHAPES = [(16, 1536, 2048), (4, 1536, 8192)]  # (batch, dim, seqlen)
WIDTH = 4
DEVICE = "cuda"
# (steps, channels, warps) per tile; the planned tiles are timed first. The backward has two passes:
# "g" (g = dy * silu'(pre), dweight, dbias; a program walks several tiles) and "dx" (dx from g).
FWD_VARIANTS = [(64, 64, 4), (16, 256, 4), (32, 256, 8), (16, 128, 2)]
G_VARIANTS = [(8, 128, 2), (32, 128, 8), (8, 256, 4), (16, 256, 8), (16, 64, 2), (32, 128, 4)]
DX_VARIANTS = [(16, 128, 4), (64, 128, 8), (32, 256, 8), (64, 64, 4), (16, 128, 2)]
TILES_PER_PROGRAM = [1, 4, 16]  # pass 1's chunk length (0, the planned value, picks from the size)


def time_ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def make_inputs(batch, dim, seqlen, channel_last=True, seed=0):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    if channel_last:
        xz = torch.randn(batch, seqlen, 2 * dim, device=DEVICE, generator=g, dtype=torch.bfloat16)
        x = xz[:, :, :dim].transpose(1, 2)
    else:
        x = torch.randn(batch, dim, seqlen, device=DEVICE, generator=g, dtype=torch.bfloat16)
    weight = torch.randn(dim, WIDTH, device=DEVICE, generator=g) / WIDTH**0.5
    bias = torch.randn(dim, device=DEVICE, generator=g)
    dy = torch.randn(x.shape, device=DEVICE, generator=g, dtype=torch.bfloat16)
    if channel_last:
        dy = dy.transpose(1, 2).contiguous().transpose(1, 2)
    return x, weight, bias, dy


def reference(x, weight, bias, dy):
    """(y, dx, dweight, dbias) of the fp32 reference on fp32 copies."""
    leaves = [t.detach().float().requires_grad_() for t in (x, weight, bias)]
    y = causal_conv1d_ref(*leaves, activation="silu")
    y.backward(dy.float())
    return (y.detach(), *(t.grad for t in leaves))


def max_error(got, ref) -> float:
    """Largest |got - ref| relative to the largest |ref| over y, dx, dweight, dbias."""
    return max(((a.float() - b).abs().max() / b.abs().max().clamp_min(1e-6)).item() for a, b in zip(got, ref))


def run_triton(x, weight, bias, dy, cfg):
    y = conv_forward(x, weight, bias, None, None, True, cfg)
    dx, dw, db, _ = conv_backward(dy, x, weight, bias, None, None, True, False, cfg)
    return y, dx, dw, db


def copy_ms(numel) -> float:
    src = torch.empty(numel, device=DEVICE, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    return time_ms(lambda: dst.copy_(src))


def bench_shape(batch, dim, seqlen) -> list[tuple]:
    rows = []
    x, weight, bias, dy = make_inputs(batch, dim, seqlen)
    ref = reference(x, weight, bias, dy)
    n = x.numel()
    floor_fwd = copy_ms(n)  # a copy moves 2 bytes in and 2 out per element: the forward's traffic
    floor_bwd = 1.5 * floor_fwd
    gbs = lambda nbytes, ms: nbytes / ms / 1e6  # noqa: E731

    def add(name, cfg, x, dy, fwd_only=False, bwd_only=False):
        got = run_triton(x, weight, bias, dy, cfg)
        err = max_error(got, ref)
        fwd = time_ms(lambda: conv_forward(x, weight, bias, None, None, True, cfg)) if not bwd_only else None
        bwd = None
        if not fwd_only:
            bwd = time_ms(lambda: conv_backward(dy, x, weight, bias, None, None, True, False, cfg))
        rows.append((f"{batch}x{dim}x{seqlen}", name, fwd, bwd, floor_fwd, floor_bwd, err,
                     gbs(4 * n, fwd) if fwd else None, gbs(6 * n, bwd) if bwd else None))  # fmt: skip

    default = plan(x)
    add("planned " + _tiles(default), default, x, dy)
    # The planned backward's two passes alone: pass 1 moves x, dy in and g out (6 bytes per element
    # with bf16 g), pass 2 g in and dx out (4 bytes).
    g = backward_gate(dy, x, weight, bias, None, None, True, default)[0]
    for name, fn, nbytes in (
        ("  pass 1: g, dw, dbias", lambda: backward_gate(dy, x, weight, bias, None, None, True, default), 6),
        ("  pass 2: dx from g", lambda: backward_dx(g, x, weight, None, False, default), 4),
    ):
        ms = time_ms(fn)
        rows.append((f"{batch}x{dim}x{seqlen}", name, None, ms, floor_fwd, floor_bwd, None, None,
                     gbs(nbytes * n, ms)))  # fmt: skip
    for block_l, block_d, warps in FWD_VARIANTS:
        cfg = dataclasses.replace(default, block_l=block_l, block_d=block_d, num_warps=warps)
        add(f"fwd {block_l}x{block_d} w{warps}", cfg, x, dy, fwd_only=True)
    for block_l, block_d, warps in G_VARIANTS:
        cfg = dataclasses.replace(default, bwd_block_l=block_l, bwd_block_d=block_d, bwd_num_warps=warps)
        add(f"bwd g {block_l}x{block_d} w{warps}", cfg, x, dy, bwd_only=True)
    for block_l, block_d, warps in DX_VARIANTS:
        cfg = dataclasses.replace(default, dx_block_l=block_l, dx_block_d=block_d, dx_num_warps=warps)
        add(f"bwd dx {block_l}x{block_d} w{warps}", cfg, x, dy, bwd_only=True)
    for n_sub in TILES_PER_PROGRAM:
        add(f"bwd g chunk {n_sub} tiles", dataclasses.replace(default, bwd_tiles_per_program=n_sub), x, dy,
            bwd_only=True)  # fmt: skip
    add("bwd g kept in fp32", dataclasses.replace(default, g_fp32=True), x, dy, bwd_only=True)
    xc, dyc = x.contiguous(), dy.contiguous()
    add("L-contig " + _tiles(plan(xc)), plan(xc), xc, dyc)

    # The PyTorch path (the model's conv before the kernel), forward and forward + backward.
    def torch_fwd_bwd():
        leaf = x.detach().requires_grad_()
        causal_conv1d_torch(leaf, weight, bias, None, True, None).backward(dy)

    fwd = time_ms(lambda: causal_conv1d_torch(x, weight, bias, None, True, None))
    both = time_ms(torch_fwd_bwd)
    rows.append((f"{batch}x{dim}x{seqlen}", "PyTorch path", fwd, both - fwd, floor_fwd, floor_bwd, None,
                 gbs(4 * n, fwd), gbs(6 * n, both - fwd)))  # fmt: skip
    return rows


def _tiles(cfg: ConvConfig) -> str:
    return (
        f"{cfg.block_l}x{cfg.block_d}/{cfg.bwd_block_l}x{cfg.bwd_block_d}/{cfg.dx_block_l}x{cfg.dx_block_d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    print(f"device: {torch.cuda.get_device_name()}")
    rows = [row for shape in SHAPES for row in bench_shape(*shape)]
    fmt = lambda v, spec: format(v, spec) if v is not None else "-".rjust(int(spec.split(".")[0]))  # noqa: E731
    print(f"{'shape':16} {'variant':30} {'fwd ms':>7} {'bwd ms':>7} {'floor f/b ms':>13} {'fwd GB/s':>9} "
          f"{'bwd GB/s':>9} {'rel err':>8}")  # fmt: skip
    for shape, name, fwd, bwd, ff, fb, err, gf, gb in rows:
        print(f"{shape:16} {name:30} {fmt(fwd, '7.4f')} {fmt(bwd, '7.4f')} {ff:6.4f}/{fb:6.4f} "
              f"{fmt(gf, '9.0f')} {fmt(gb, '9.0f')} {fmt(err, '8.1e')}")  # fmt: skip
    bad = [r for r in rows if r[6] is not None and r[6] > 2e-2]
    if bad:
        raise SystemExit(f"MISMATCH against the reference: {[r[:2] for r in bad]}")


if __name__ == "__main__":
    main()
