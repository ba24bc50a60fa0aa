"""Compile the scan kernels for Hopper (sm_90) on any machine, no GPU needed, and report resources.

    python benchmarks/kernel_report.py                      # forward, backward, adjoint at the GPU plan
    python benchmarks/kernel_report.py --block-d 32 --dstate 16 --no-vector
    python benchmarks/kernel_report.py --kernels bwd --variant stored-d32-c16-pf-defer

Prints registers, stack (spills), shared memory and counts of the instructions that matter (exps,
shuffles, global loads/stores, local-memory traffic) per kernel, from Triton's bundled ptxas and
cuobjdump. Use it before spending GPU time: a kernel that spills or has twice the loads will not be
fast. Pointer alignment is not specialised here, so row loads may show narrower than on the GPU.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm.kernels.selective_scan import triton_scan  # noqa: E402
from mamba_lm.kernels.selective_scan.triton_bwd import adjoint_local_kernel, scan_bwd_kernel  # noqa: E402
from mamba_lm.kernels.selective_scan.triton_fwd import scan_fwd_kernel  # noqa: E402

TOOLS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
IO_TENSORS = ("u", "delta", "z", "out", "dout", "du", "ddelta", "dz", "B", "C")
# Strides that are 1 in the model's layout (Triton specialises those at launch).
UNIT_STRIDES = ("stride_ud", "stride_deltad", "stride_zd", "stride_od", "stride_dod", "stride_gd",
                "stride_Bn", "stride_Cn")  # fmt: skip
KERNELS = {
    "fwd": scan_fwd_kernel,
    "bwd": scan_bwd_kernel,
    "adjoint": adjoint_local_kernel,
}
COUNTED = ("MUFU.EX2", "SHFL", "LDG", "STG", "LDL", "STL", "BAR", "FFMA", "FMUL")


def compile_sm90(fn, constexprs: dict, num_warps: int, io_dtype: str):
    signature = {}
    for name in fn.arg_names:
        if name in constexprs or name in UNIT_STRIDES:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            base = name[: -len("_ptr")]
            signature[name] = "*" + (io_dtype if base in IO_TENSORS else "i32" if base == "seq" else "fp32")
        else:
            signature[name] = "i32"
    values = dict(constexprs, **{s: 1 for s in UNIT_STRIDES if s in fn.arg_names})
    source = ASTSource(fn=fn, signature=signature, constexprs=values)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


def report(name: str, compiled) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(compiled.asm["cubin"])
    try:
        usage = subprocess.run(
            [TOOLS / "cuobjdump", "-res-usage", f.name], capture_output=True, text=True
        ).stdout
        sass = subprocess.run([TOOLS / "cuobjdump", "-sass", f.name], capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    found = re.search(r"REG:(\d+).*?STACK:(\d+).*?SHARED:(\d+)", usage, re.S)
    regs, stack, shared = found.groups() if found else ("?", "?", "?")
    counts = " ".join(f"{op}={len(re.findall(re.escape(op), sass))}" for op in COUNTED)
    return f"{name:<10} registers={regs:>3} stack={stack:>4} shared={shared:>5}  {counts}"


def main() -> None:
    p = argparse.ArgumentParser()
    variants = list(triton_scan.BWD_VARIANTS)
    p.add_argument("--variant", default=triton_scan.BWD_VARIANT, choices=variants,
                   help="backward variant (BWD_VARIANTS): its channel block and kernel switches")  # fmt: skip
    p.add_argument("--block-d", type=int, help="channels per program, every kernel (default: the plan's)")
    p.add_argument("--num-warps", type=int, default=1)
    p.add_argument("--dstate", type=int, default=16)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--no-vector", action="store_true", help="scalar B/C loads (as on non-aligned inputs)")
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    args = p.parse_args()
    variant = triton_scan.BWD_VARIANTS[args.variant]
    cfg = triton_scan.ScanConfig(64, args.num_warps, seg_len=variant["chunk_len"], **variant)
    flags = dict(HAS_Z=True, HAS_BIAS=True, DELTA_SOFTPLUS=True, HAS_SEQ_IDX=False, VEC_BC=not args.no_vector)
    fwd_sizes = dict(BLOCK_D=args.block_d or cfg.block_d, DSTATE=args.dstate)
    bwd_sizes = dict(BLOCK_D=args.block_d or cfg.bwd_block_d, DSTATE=args.dstate)
    fwd = dict(flags, HAS_D=True, HAS_H0=True, WRITE_OUT=True, SAVE_CKPT=True, SAVE_END=True, **fwd_sizes)
    bwd = dict(flags, HAS_D=True, HAS_GEND=True, PREFETCH_STATES=cfg.prefetch_states, **bwd_sizes)
    bwd.update(DEFER_SUMS=cfg.defer_sums, TILE=cfg.bwd_tile, FOLD_SUMS=cfg.fold_sums)
    adjoint = dict(flags, **bwd_sizes)
    constexprs = {"fwd": fwd, "bwd": bwd, "adjoint": adjoint}
    print(f"backward variant {args.variant!r}: {variant}", flush=True)
    for name in args.kernels:
        print(
            report(name, compile_sm90(KERNELS[name], constexprs[name], args.num_warps, args.dtype)),
            flush=True,
        )


if __name__ == "__main__":
    main()
