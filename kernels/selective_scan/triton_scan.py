"""Autograd glue and launch planning for the Triton selective scan.

Forward: one pass when batch x channel blocks already fill the GPU; otherwise the sequence is cut
into segments scanned in parallel: (1) each segment's local end state, (2) a short sequential pass
joining them (`combine_states_kernel`), (3) every segment again from its true start state,
writing y. Either way the state before every chunk of `chunk_len` steps is saved for the backward
(triton_bwd.py), which runs the same plan on the adjoint. `BWD_VARIANT` names the backward variant
(block size, chunk length, kernel switches) the plan uses (benchmarks/scan_bwd_variants.py times them all).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from .ref import as_grouped
from .triton_bwd import adjoint_local_kernel, scan_bwd_kernel
from .triton_chunks import combine_states_kernel
from .triton_fwd import scan_fwd_kernel


@dataclass(frozen=True)
class ScanConfig:
    """How the scan is cut into programs; every field has a sensible default from `plan`."""

    block_d: int  # channels per program (forward)
    num_warps: int
    chunk_len: int  # steps between saved states (the backward restarts from these)
    seg_len: int  # steps per program along the sequence (a multiple of chunk_len)
    bwd_block_d: int = 32  # channels per program in the backward (a power of two)
    bwd_num_warps: int = 1
    prefetch_states: bool = False  # backward: read the next step's state one step ahead
    defer_sums: bool = False  # backward: a step's dB/dC channel sums during the next step
    bwd_tile: int = 0  # backward: > 0 walks each chunk in tiles of this many steps (a smaller scratch)
    fold_sums: bool = False  # backward: add a thread's channels before the shuffle rounds of dB/dC sums


# Backward variants of the GPU plan, timed side by side by benchmarks/scan_bwd_variants.py:
# name -> ScanConfig fields. BWD_VARIANT picks the one `plan` uses. chunk_len also sets how many
# states the forward saves for the backward: batch x seqlen / chunk_len x dstate x dim fp32 per call
# (chunk 64: 50 MB per Mamba-130M layer at 16 x 2048; chunk 16: 200 MB).
# (The names keep their "stored" prefix from the measurements: the states of a chunk are stored, not
# recomputed per sub-block as by the retired "recompute" kernel.)
BWD_VARIANTS = {
    "stored-pf": dict(bwd_block_d=64, chunk_len=64, prefetch_states=True),
    "stored-c16-pf": dict(bwd_block_d=64, chunk_len=16, prefetch_states=True),
    "stored-c16-fold": dict(bwd_block_d=64, chunk_len=16, fold_sums=True),
    "stored-t16-pf": dict(bwd_block_d=64, chunk_len=64, bwd_tile=16, prefetch_states=True),
    "stored-d32-c16-pf": dict(bwd_block_d=32, chunk_len=16, prefetch_states=True),
    "stored-d32-pf-defer": dict(bwd_block_d=32, chunk_len=64, prefetch_states=True, defer_sums=True),
    "stored-d32-c16-pf-defer": dict(bwd_block_d=32, chunk_len=16, prefetch_states=True, defer_sums=True),
    "stored-d32-t16-pf-defer": dict(
        bwd_block_d=32, chunk_len=64, bwd_tile=16, prefetch_states=True, defer_sums=True
    ),
}
# Measured on the H200 (benchmarks/scan_bwd_variants.py, RESULTS.md v6): fwd+bwd ms at 16x1536x2048 /
# 32x2048x2048 stored-c16-pf 4.05 / 7.82, the fastest at both shapes (the retired "recompute"
# kernel: 4.97 / 9.09).
BWD_VARIANT = "stored-c16-pf"


def _bwd_kernel_switches(variant: dict) -> dict:
    """The ScanConfig fields of a BWD_VARIANTS entry other than its block size and chunk length."""
    return {k: v for k, v in variant.items() if k not in ("bwd_block_d", "chunk_len")}


def plan(
    batch: int,
    dim: int,
    groups: int,
    dstate: int,
    seqlen: int,
    device: torch.device,
    bwd_variant: str | None = None,
) -> ScanConfig:
    """Pick block sizes and the segment length for a problem size.

    The backward's block, chunk length and kernel switches come from
    ``BWD_VARIANTS[bwd_variant or BWD_VARIANT]`` (on the GPU; the interpreter plan keeps its small
    blocks and takes only the kernel switches).

    When batch x channel blocks cannot fill the GPU (fewer than 4 programs per SM), the sequence is
    cut into segments of 512 steps: measured on an H200 (benchmarks/RESULTS.md), the extra pass of
    the segment-parallel plan costs far less than the idle SMs of one long walk per program.
    """
    dim_per_group = dim // groups
    variant = BWD_VARIANTS[bwd_variant or BWD_VARIANT]
    if device.type != "cuda":  # Triton's interpreter: small blocks, exercise the chunked paths.
        block_d = min(16, triton.next_power_of_2(dim_per_group))
        return ScanConfig(
            block_d, 1, chunk_len=16, seg_len=32, bwd_block_d=block_d, bwd_num_warps=1,
            **_bwd_kernel_switches(variant),
        )  # fmt: skip
    block_d = min(64, triton.next_power_of_2(dim_per_group))
    bwd_block_d = min(variant["bwd_block_d"], triton.next_power_of_2(dim_per_group))
    chunk_len = variant["chunk_len"]
    seg_len = triton.cdiv(seqlen, chunk_len) * chunk_len
    programs = batch * groups * triton.cdiv(dim_per_group, block_d)
    if programs < 4 * torch.cuda.get_device_properties(device).multi_processor_count:
        seg_len = min(seg_len, 512)
    return ScanConfig(
        block_d, 1, chunk_len, seg_len, bwd_block_d=bwd_block_d, bwd_num_warps=1,
        **_bwd_kernel_switches(variant),
    )  # fmt: skip


def _dim_contiguous_like(x: torch.Tensor) -> torch.Tensor:
    """An empty (batch, dim, seqlen) tensor stored as (batch, seqlen, dim): channel rows contiguous."""
    batch, dim, seqlen = x.shape
    return torch.empty(batch, seqlen, dim, dtype=x.dtype, device=x.device).transpose(1, 2)


def _strides3(x: torch.Tensor | None, like: torch.Tensor) -> tuple[int, int, int]:
    return tuple((x if x is not None else like).stride())


def vector_rows_ok(x: torch.Tensor) -> bool:
    """Whether B or C (batch, groups, dstate, seqlen) can be read 16 bytes at a time on a GPU: bf16 or
    fp32, stride 1 over states, dstate a multiple of 16 bytes, every row start 16-byte aligned."""
    if not x.is_cuda or x.dtype not in (torch.bfloat16, torch.float32) or x.stride(2) != 1:
        return False
    es = x.element_size()
    aligned = x.data_ptr() % 16 == 0 and all(
        (s * es) % 16 == 0 for s in (x.stride(0), x.stride(1), x.stride(3))
    )
    return aligned and (x.shape[2] * es) % 16 == 0


def _flags(D, z, delta_bias, delta_softplus, seq_idx) -> dict:
    return dict(
        HAS_Z=z is not None,
        HAS_D=D is not None,
        HAS_BIAS=delta_bias is not None,
        DELTA_SOFTPLUS=bool(delta_softplus),
        HAS_SEQ_IDX=seq_idx is not None,
    )


def _combine(local, dtsum, reset, A, carry_in, reverse, cfg):
    """Run `combine_states_kernel` on local (batch, n_seg, dstate, dim); returns (per-segment carries
    (batch, n_seg, dstate, dim), final carry (batch, dim, dstate))."""
    batch, n_seg, dstate, dim = local.shape
    out = torch.empty_like(local)
    carry_out = torch.empty(batch, dim, dstate, dtype=torch.float32, device=local.device)
    ci = carry_in if carry_in is not None else carry_out
    grid = (triton.cdiv(dim, cfg.block_d), batch)
    combine_states_kernel[grid](
        local, dtsum, reset if reset is not None else dtsum, A, ci, out, carry_out,
        A.stride(0), A.stride(1), *ci.stride(), *carry_out.stride(),
        dim, n_seg,
        HAS_CARRY_IN=carry_in is not None, HAS_RESET=reset is not None, REVERSE=reverse,
        BLOCK_D=cfg.block_d, DSTATE=dstate, num_warps=cfg.num_warps,
    )  # fmt: skip
    return out, carry_out


def scan_forward(u, delta, A, B4, C4, D, z, delta_bias, delta_softplus, initial_state, seq_idx, cfg):
    """Returns out (like u, channel-contiguous), last_state (batch, dim, dstate) fp32, and what the
    backward needs: ckpt (batch, n_chunks, dstate, dim), dtsum and reset per segment (or None)."""
    batch, dim, L = u.shape
    groups, dstate = B4.shape[1], A.shape[1]
    dpg = dim // groups
    n_dblocks = groups * triton.cdiv(dpg, cfg.block_d)
    n_chunks = triton.cdiv(L, cfg.chunk_len)
    n_seg = triton.cdiv(L, cfg.seg_len)
    dev = u.device
    f32 = dict(dtype=torch.float32, device=dev)
    out = _dim_contiguous_like(u)
    ckpt = torch.empty(batch, n_chunks, dstate, dim, **f32)
    last_state = torch.empty(batch, dim, dstate, **f32)
    hend = torch.empty(batch, n_seg, dstate, dim, **f32) if n_seg > 1 else last_state
    dtsum = torch.empty(batch, n_seg, dim, **f32)
    reset = torch.empty(batch, n_seg, **f32) if seq_idx is not None else None
    seq = seq_idx if seq_idx is not None else dtsum  # placeholder pointer, never read
    zz = z if z is not None else u
    flags = _flags(D, z, delta_bias, delta_softplus, seq_idx)

    def state_strides(x):  # (batch, segment, state, channel)
        return (x.stride(0), 0, x.stride(2), x.stride(1)) if x.dim() == 3 else x.stride()

    def launch(h0, write_out, save_ckpt, save_end):
        scan_fwd_kernel[(n_dblocks, batch, n_seg)](
            u, delta, zz, out, A, B4, C4,
            D if D is not None else A, delta_bias if delta_bias is not None else A, seq,
            h0 if h0 is not None else hend, ckpt, hend, dtsum, reset if reset is not None else dtsum,
            *u.stride(), *delta.stride(), *zz.stride(), *out.stride(), *A.stride(),
            *B4.stride(), *C4.stride(), *(seq_idx.stride() if seq_idx is not None else (0, 0)),
            *state_strides(h0 if h0 is not None else hend), *state_strides(hend),
            L, dim, dpg, n_seg, cfg.seg_len, n_chunks, cfg.chunk_len,
            HAS_H0=h0 is not None, WRITE_OUT=write_out, SAVE_CKPT=save_ckpt, SAVE_END=save_end,
            BLOCK_D=cfg.block_d, DSTATE=dstate, num_warps=cfg.num_warps, **flags,
            VEC_BC=vector_rows_ok(B4) and vector_rows_ok(C4),
        )  # fmt: skip

    if n_seg == 1:
        launch(initial_state, write_out=True, save_ckpt=True, save_end=True)
        return out, last_state, ckpt, None, None
    launch(None, write_out=False, save_ckpt=False, save_end=True)
    h_start, last_state = _combine(hend, dtsum, reset, A, initial_state, False, cfg)
    launch(h_start, write_out=True, save_ckpt=True, save_end=False)
    return out, last_state, ckpt, dtsum, reset


def scan_backward(dout, dlast, u, delta, A, B4, C4, D, z, delta_bias, delta_softplus, seq_idx,
                  ckpt, dtsum, reset, cfg):  # fmt: skip
    """Returns du, ddelta, dA, dB4, dC4, dD, dz, ddelta_bias, d_initial_state (fp32 partial sums reduced)."""
    batch, dim, L = u.shape
    groups, dstate = B4.shape[1], A.shape[1]
    dpg = dim // groups
    bd, nw = cfg.bwd_block_d, cfg.bwd_num_warps
    bpg = triton.cdiv(dpg, bd)
    n_dblocks = groups * bpg
    n_chunks = triton.cdiv(L, cfg.chunk_len)
    n_seg = triton.cdiv(L, cfg.seg_len)
    dev = u.device
    f32 = dict(dtype=torch.float32, device=dev)
    seq = seq_idx if seq_idx is not None else ckpt
    seq_strides = seq_idx.stride() if seq_idx is not None else (0, 0)
    zz = z if z is not None else u
    flags = _flags(D, z, delta_bias, delta_softplus, seq_idx)
    grid = (n_dblocks, batch, n_seg)

    if n_seg > 1:
        q = torch.empty(batch, n_seg, dstate, dim, **f32)
        adjoint_local_kernel[grid](
            delta, zz, dout, A, C4, delta_bias if delta_bias is not None else A, seq, q,
            *delta.stride(), *zz.stride(), *dout.stride(), *A.stride(), *C4.stride(), *seq_strides,
            L, dim, dpg, n_seg, cfg.seg_len,
            HAS_Z=flags["HAS_Z"], HAS_BIAS=flags["HAS_BIAS"], DELTA_SOFTPLUS=flags["DELTA_SOFTPLUS"],
            HAS_SEQ_IDX=flags["HAS_SEQ_IDX"], BLOCK_D=bd, DSTATE=dstate, num_warps=nw,
            VEC_BC=vector_rows_ok(C4),
        )  # fmt: skip
        gend, _ = _combine(q, dtsum, reset, A, dlast, True, cfg)
        gend_strides = gend.stride()
    else:
        gend = dlast
        gend_strides = (
            (dlast.stride(0), 0, dlast.stride(2), dlast.stride(1)) if dlast is not None else (0,) * 4
        )

    du, ddelta = _dim_contiguous_like(u), _dim_contiguous_like(u)
    dz = _dim_contiguous_like(u) if z is not None else du
    dB_part = torch.empty(batch, n_dblocks, L, dstate, **f32)
    dC_part = torch.empty(batch, n_dblocks, L, dstate, **f32)
    dA_part = torch.empty(batch, n_seg, dstate, dim, **f32)
    dD_part = torch.empty(batch, n_seg, dim, **f32)
    dbias_part = torch.empty(batch, n_seg, dim, **f32)
    dh0 = torch.empty(batch, n_seg, dstate, dim, **f32)
    scratch_steps = cfg.chunk_len  # every state of a chunk
    if cfg.bwd_tile > 0:  # one tile of states and every tile's start state
        scratch_steps = cfg.bwd_tile + triton.cdiv(cfg.chunk_len, cfg.bwd_tile)
    scratch = torch.empty(batch * n_seg * n_dblocks * scratch_steps * dstate * bd, **f32)
    scan_bwd_kernel[grid](
        u, delta, zz, dout, A, B4, C4,
        D if D is not None else A, delta_bias if delta_bias is not None else A, seq,
        ckpt, gend if gend is not None else ckpt, scratch,
        du, ddelta, dz, dB_part, dC_part, dA_part, dD_part, dbias_part, dh0,
        *u.stride(), *delta.stride(), *zz.stride(), *dout.stride(), *du.stride(), *A.stride(),
        *B4.stride(), *C4.stride(), *seq_strides, *gend_strides,
        L, dim, dpg, n_dblocks, n_seg, cfg.seg_len, n_chunks, cfg.chunk_len,
        HAS_GEND=gend is not None, BLOCK_D=bd, DSTATE=dstate,
        VEC_BC=vector_rows_ok(B4) and vector_rows_ok(C4),
        PREFETCH_STATES=cfg.prefetch_states, DEFER_SUMS=cfg.defer_sums, TILE=cfg.bwd_tile,
        FOLD_SUMS=cfg.fold_sums, num_warps=nw, **flags,
    )  # fmt: skip

    def per_group(part):  # (batch, n_dblocks, L, dstate) -> (batch, groups, dstate, L)
        return part.view(batch, groups, bpg, L, dstate).sum(2).transpose(-1, -2)

    return (
        du, ddelta, dA_part.sum((0, 1)).t(), per_group(dB_part), per_group(dC_part),
        dD_part.sum((0, 1)) if D is not None else None,
        dz if z is not None else None,
        dbias_part.sum((0, 1)) if delta_bias is not None else None,
        dh0[:, 0].transpose(1, 2),
    )  # fmt: skip


class SelectiveScanTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx, cfg):
        B4, C4 = as_grouped(B), as_grouped(C)
        batch, dim, L = u.shape
        if cfg is None:
            cfg = plan(batch, dim, B4.shape[1], A.shape[1], L, u.device)
        out, last_state, ckpt, dtsum, reset = scan_forward(
            u, delta, A, B4, C4, D, z, delta_bias, delta_softplus, initial_state, seq_idx, cfg
        )
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, seq_idx, ckpt, dtsum, reset)
        ctx.delta_softplus, ctx.cfg, ctx.has_h0 = delta_softplus, cfg, initial_state is not None
        ctx.set_materialize_grads(False)
        return out, last_state

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, seq_idx, ckpt, dtsum, reset = ctx.saved_tensors
        if dout is None:
            dout = torch.zeros_like(u)
        grads = scan_backward(
            dout, dlast, u, delta, A, as_grouped(B), as_grouped(C), D, z, delta_bias,
            ctx.delta_softplus, seq_idx, ckpt, dtsum, reset, ctx.cfg,
        )  # fmt: skip
        du, ddelta, dA, dB, dC, dD, dz, dbias, dh0 = grads
        return (
            du, ddelta, dA.to(A.dtype), dB.reshape(B.shape).to(B.dtype), dC.reshape(C.shape).to(C.dtype),
            dD.to(D.dtype) if dD is not None else None, dz,
            dbias.to(delta_bias.dtype) if dbias is not None else None, None,
            dh0 if ctx.has_h0 else None, None, None,
        )  # fmt: skip


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          initial_state=None, seq_idx=None, config: ScanConfig | None = None):  # fmt: skip
    """Returns (out, last_state); arguments as ``selective_scan_fn`` (already validated).

    ``config`` overrides the launch plan (tests use it to force the chunked paths)."""
    if u.shape[-1] == 0:
        from .torch_scan import selective_scan_torch

        return selective_scan_torch(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx
        )
    return SelectiveScanTriton.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state,
                                     seq_idx, config)  # fmt: skip
