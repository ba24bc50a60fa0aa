"""Profile one training step of a named model on the GPU: the CUDA kernels that take the time.

    python benchmarks/profile_step.py --model mamba_130m --seqlen 2048 --batch 16
    python benchmarks/profile_step.py --model mamba_130m --unfused      # the unfused reference path

The step is the trainer's: bf16 autocast over fp32 weights, the LM's loss from ``forward(labels=)``,
backward, gradient clipping at 1.0, fused AdamW. Prints the step's GPU time and peak memory, the time
per kernel family (scan, conv, norm, GEMM, loss, other) and the top kernels.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm import build_model, configs  # noqa: E402
from mamba_lm.modules.fusion import set_fused  # noqa: E402

# Kernel family by a substring of the kernel's name, first match wins.
FAMILIES = (
    ("scan backward", ("scan_bwd", "adjoint_local_kernel")),  # scan_bwd_kernel, scan_bwd_stored_kernel
    ("scan forward", ("scan_fwd_kernel", "combine_states_kernel")),
    ("conv", ("conv_fwd_kernel", "conv_bwd")),
    ("norm", ("norm_fwd_kernel", "norm_bwd_kernel", "rms_norm", "layer_norm")),
    ("attention", ("flash", "fmha", "attention")),
    ("loss", ("xent", "log_softmax", "nll_loss", "logsumexp", "cross_entropy")),
    ("GEMM", ("gemm", "cutlass", "xmma", "nvjet", "cublas", "sm90_", "sm80_")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
)


def family(kernel_name: str) -> str:
    lowered = kernel_name.lower()
    for name, keys in FAMILIES:
        if any(key in lowered for key in keys):
            return name
    return "other (elementwise, copies, reductions)"


def kernel_families(prof) -> dict[str, float]:
    """GPU ms per kernel family of a profile that recorded only CUDA activity."""
    per_family: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        per_family[family(event.key)] += event.self_device_time_total / 1e3
    return per_family


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mamba_130m")
    p.add_argument("--seqlen", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rows", type=int, default=25, help="top kernels to list")
    p.add_argument("--unfused", action="store_true", help="profile the unfused reference path")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("profile_step.py needs a CUDA GPU")
    config = configs.get(args.model)
    model = set_fused(build_model(config).cuda(), not args.unfused)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    tokens = torch.randint(0, config.vocab_size, (args.batch, args.seqlen + 1), device="cuda")
    input_ids, labels = tokens[:, :-1], tokens[:, 1:]

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            sums = model(input_ids, labels=labels)
        (sums.loss_sum / sums.count).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    step_ms = (time.perf_counter() - start) / 5 * 1e3
    peak_gb = torch.cuda.max_memory_allocated() / 1e9
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()

    per_family = kernel_families(prof)
    total = sum(per_family.values())
    path = "unfused" if args.unfused else "fused"
    tokens_per_s = args.batch * args.seqlen / step_ms * 1e3
    print(f"{args.model} ({path}) {args.seqlen} x {args.batch}: {step_ms:.1f} ms/step wall "
          f"({tokens_per_s:,.0f} tokens/s), {total:.1f} ms of kernels, peak {peak_gb:.1f} GB")  # fmt: skip
    print(f"\n{'kernel family':<42} {'ms':>8} {'share':>7}")
    for name, ms in sorted(per_family.items(), key=lambda kv: -kv[1]):
        print(f"{name:<42} {ms:>8.2f} {ms / total:>7.1%}")
    print()
    print(
        prof.key_averages().table(
            sort_by="self_device_time_total", row_limit=args.rows, max_name_column_width=70
        )
    )


if __name__ == "__main__":
    main()
