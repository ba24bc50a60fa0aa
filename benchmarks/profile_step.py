"""Profile one training step of a named model on the GPU: the CUDA kernels that take the time.

python benchmarks/profile_step.py --model mamba_130m --seqlen 2048 --batch 16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm import build_model, configs  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mamba_130m")
    p.add_argument("--seqlen", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rows", type=int, default=25)
    args = p.parse_args()
    model = build_model(configs.get(args.model)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    tokens = torch.randint(0, 50277, (args.batch, args.seqlen + 1), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(tokens[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows, max_name_column_width=70))


if __name__ == "__main__":
    main()
