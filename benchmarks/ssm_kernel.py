"""S4D's convolution kernel benchmark (GPU): the Triton Vandermonde kernel against the PyTorch reference,
forward + backward, at the LRA shapes S4 trains.

    python benchmarks/ssm_kernel.py

K[h, l] = 2 Re(sum_n W[h, n] exp(dtA[h, n] l)) for H channels, N complex modes, L positions. The reference
stores the (H, N, L) complex powers (8 bytes each) and its backward reads them again; the Triton kernels
recompute them, so their traffic is K and its gradient (H x L fp32). Shapes: ListOps S4 v3 (H 128, N 32,
L 2,000: one kernel per direction and layer) and Pathfinder-32 S4 v3 (H 256, N 32, L 1,024). Both are
checked against each other first; times are medians of triton.testing.do_bench.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import torch
from triton.testing import do_bench

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm.kernels import vandermonde_kernel_ref  # noqa: E402
from mamba_lm.kernels.ssm_kernel.triton_glue import vandermonde_kernel_triton  # noqa: E402

SHAPES = {"listops": (128, 32, 2000), "pathfinder": (256, 32, 1024)}  # name: (H, N, L)


def inputs(channels: int, modes: int):
    """dtA, W as S4D-Lin with dt log-uniform in [1e-3, 1e-1]."""
    dt = torch.exp(torch.rand(channels, 1) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    A = torch.complex(-0.5 * torch.ones(channels, modes), math.pi * torch.arange(modes).repeat(channels, 1))
    W = torch.complex(torch.randn(channels, modes), torch.randn(channels, modes)) * dt
    return (dt * A).cuda().requires_grad_(), W.cuda().requires_grad_()


def forward_backward(fn, dtA, W, seqlen, grad):
    """K and the gradients of dtA and W for the upstream gradient ``grad``."""
    K = fn(dtA, W, seqlen)
    return (K.detach(), *torch.autograd.grad(K, (dtA, W), grad))


def main() -> None:
    torch.manual_seed(0)
    print(f"{'shape':<11} {'variant':<10} {'fwd+bwd ms':>11} {'vs reference':>13}")
    for name, (channels, modes, seqlen) in SHAPES.items():
        dtA, W = inputs(channels, modes)
        grad = torch.randn(channels, seqlen, device="cuda")
        times, results = {}, {}
        for variant, fn in (("reference", vandermonde_kernel_ref), ("triton", vandermonde_kernel_triton)):
            step = functools.partial(forward_backward, fn, dtA, W, seqlen, grad)
            results[variant] = step()
            times[variant] = do_bench(step)
        for a, b in zip(results["triton"], results["reference"]):
            error = ((a - b).abs().max() / b.abs().max()).item()
            assert error < 1e-3, (name, error)
        for variant, ms in times.items():
            print(f"{name:<11} {variant:<10} {ms:>11.3f} {times['reference'] / ms:>12.2f}x")


if __name__ == "__main__":
    main()
