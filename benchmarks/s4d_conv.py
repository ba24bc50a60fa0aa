"""S4D convolution benchmark (GPU): one bidirectional S4D layer, forward + backward, as LRA trains it.

    python benchmarks/s4d_conv.py            # correctness, then the timing table

Rows per shape:
- "strided, n = 2L": the formulation before 2026-12-02, kept here as the yardstick: FFTs of length
  exactly 2L along the middle dimension of (batch, L, H).
- "module": ``BidirectionalS4D`` as it is: FFT length the power of two >= 2L (``fft_length``), FFTs along
  the last dimension of (batch, H, n).
Shapes: ListOps (S4 v3: batch 50, H 128, N 64, each batch padded to its longest row, so L varies from
batch to batch: 40 lengths drawn from 1,900-2,000 are cycled) and Pathfinder-32 (batch 64, H 256, N 64,
L 1,024). "first pass" times one visit of each length (cuFFT plans built on the way, as early in a run);
"steady" times the second visit. Both variants are checked against each other first.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm.modules.s4d_bidirectional import BidirectionalS4D  # noqa: E402

SHAPES = {  # name: (batch, d_model, d_state, lengths)
    "listops": (50, 128, 64, sorted(random.Random(0).sample(range(1900, 2001), 40))),
    "pathfinder": (64, 256, 64, [1024]),
}


def strided_forward(layer: BidirectionalS4D, hidden_states: torch.Tensor) -> torch.Tensor:
    """The earlier formulation: FFT length 2L, transformed along dim 1 of (batch, L, H)."""
    u = hidden_states.float()
    seqlen = u.shape[1]
    forward, backward = layer.kernels(seqlen)
    kernel = torch.cat((forward, backward.flip(-1)), dim=-1)  # (H, 2L)
    K_f = torch.fft.rfft(kernel, n=2 * seqlen, dim=-1).T  # (L + 1, H)
    u_f = torch.fft.rfft(u, n=2 * seqlen, dim=1)
    y = torch.fft.irfft(u_f * K_f, n=2 * seqlen, dim=1)[:, :seqlen]
    return layer._output(y + u * layer.D.float(), hidden_states.dtype)


def step(forward, layer, x):
    for p in layer.parameters():
        p.grad = None
    x.grad = None
    forward(layer, x).square().mean().backward()


def time_pass(forward, layer, inputs) -> float:
    """Milliseconds per step over one visit of each input."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for x in inputs:
        step(forward, layer, x)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / len(inputs)


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for name, (batch, d_model, d_state, lengths) in SHAPES.items():
        layer = BidirectionalS4D(d_model, d_state=d_state, init="legs", trainable_B=True, device="cuda")
        inputs = [torch.randn(batch, L, d_model, device="cuda", requires_grad=True) for L in lengths]
        with torch.no_grad():
            a, b = strided_forward(layer, inputs[0]), layer(inputs[0])
            error = ((a - b).norm() / a.norm()).item()
        print(f"{name}: relative difference module vs strided {error:.2e}")
        assert error < 1e-4, name
        visits = inputs if len(inputs) > 1 else inputs * 20  # one length: 20 steps of it
        variants = {"strided, n = 2L": strided_forward, "module": lambda m, x: m(x)}
        for variant, forward in variants.items():
            torch.backends.cuda.cufft_plan_cache.clear()
            step(forward, layer, inputs[0])  # the layer's own kernels warm
            first = time_pass(forward, layer, visits)
            steady = time_pass(forward, layer, visits)
            rows.append((name, variant, first, steady))
    print(f"\n{'shape':<11} {'variant':<16} {'first pass ms':>14} {'steady ms':>10} {'vs strided':>11}")
    base = {}
    for name, variant, first, steady in rows:
        base.setdefault(name, steady)
        print(f"{name:<11} {variant:<16} {first:>14.2f} {steady:>10.2f} {base[name] / steady:>10.2f}x")


if __name__ == "__main__":
    main()
