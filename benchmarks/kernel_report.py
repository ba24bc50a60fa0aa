"""Compile the scan kernels for Hopper (sm_90) on any machine, no GPU needed, and report resources.

    python benchmarks/kernel_report.py                      # forward, backward, adjoint at the GPU plan
    python benchmarks/kernel_report.py --block-d 32 --sub 2 --dstate 16 --no-vector
    python benchmarks/kernel_report.py --kernels bwd-stored --block-d 32 --prefetch-states

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
from kernels.selective_scan.triton_bwd import adjoint_local_kernel, scan_bwd_kernel  # noqa: E402
from kernels.selective_scan.triton_bwd_stored import scan_bwd_stored_kernel  # noqa: E402
from kernels.selective_scan.triton_fwd import scan_fwd_kernel  # noqa: E402

TOOLS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
IO_TENSORS = ("u", "delta", "z", "out", "dout", "du", "ddelta", "dz", "B", "C")
# Strides that are 1 in the model's layout (Triton specialises those at launch).
UNIT_STRIDES = ("stride_ud", "stride_deltad", "stride_zd", "stride_od", "stride_dod", "stride_gd",
                "stride_Bn", "stride_Cn")  # fmt: skip
KERNELS = {
    "fwd": scan_fwd_kernel,
    "bwd": scan_bwd_kernel,  # backward variant "recompute"
    "bwd-stored": scan_bwd_stored_kernel,  # backward variant "stored"
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
    p.add_argument("--block-d", type=int, default=64, help="channels per program (forward and backward)")
    p.add_argument("--num-warps", type=int, default=1)
    p.add_argument("--dstate", type=int, default=16)
    p.add_argument("--sub", type=int, default=2, help="backward sub-block length")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--no-vector", action="store_true", help="scalar B/C loads (as on non-aligned inputs)")
    p.add_argument("--prefetch-states", action="store_true", help="bwd-stored: PREFETCH_STATES")
    p.add_argument("--defer-sums", action="store_true", help="bwd-stored: DEFER_SUMS")
    p.add_argument("--tile", type=int, default=0, help="bwd-stored: TILE (0: whole chunks)")
    p.add_argument("--fold-sums", action="store_true", help="bwd-stored: FOLD_SUMS")
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    args = p.parse_args()
    flags = dict(HAS_Z=True, HAS_BIAS=True, DELTA_SOFTPLUS=True, HAS_SEQ_IDX=False, VEC_BC=not args.no_vector)
    sizes = dict(BLOCK_D=args.block_d, DSTATE=args.dstate)
    fwd = dict(flags, HAS_D=True, HAS_H0=True, WRITE_OUT=True, SAVE_CKPT=True, SAVE_END=True, **sizes)
    bwd = dict(flags, HAS_D=True, HAS_GEND=True, SUB=args.sub, **sizes)
    bwd_stored = dict(flags, HAS_D=True, HAS_GEND=True, PREFETCH_STATES=args.prefetch_states, **sizes)
    bwd_stored.update(DEFER_SUMS=args.defer_sums, TILE=args.tile, FOLD_SUMS=args.fold_sums)
    adjoint = dict(flags, **sizes)
    constexprs = {"fwd": fwd, "bwd": bwd, "bwd-stored": bwd_stored, "adjoint": adjoint}
    for name in args.kernels:
        print(
            report(name, compile_sm90(KERNELS[name], constexprs[name], args.num_warps, args.dtype)),
            flush=True,
        )


if __name__ == "__main__":
    main()
