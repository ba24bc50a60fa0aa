"""Time the scan at several segment lengths for given shapes (GPU): what the launch plan should pick.

python benchmarks/scan_plan_probe.py 16x1536x2048 8x2048x8192
"""

import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mamba_lm.kernels.selective_scan.triton_scan import plan  # noqa: E402
from scan import fwd_bwd_fn, make_inputs, scan_fn, time_ms  # noqa: E402

for shape in sys.argv[1:]:
    batch, dim, seqlen = map(int, shape.split("x"))
    inputs = make_inputs(batch, seqlen, dim=dim)
    base = plan(batch, dim, 1, 16, seqlen, torch.device("cuda"))
    for seg in sorted({base.seg_len, 1 << 20, 1024, 512}):
        cfg = dataclasses.replace(base, seg_len=seg)
        fwd = time_ms(lambda cfg=cfg, inputs=inputs: scan_fn(cfg)(**inputs))
        fb = time_ms(fwd_bwd_fn(scan_fn(cfg), inputs))
        row = f"{shape}: seg_len={seg:8d} (plan {base.seg_len}): fwd {fwd:.3f} ms fwd+bwd {fb:.3f} ms"
        print(row, flush=True)
