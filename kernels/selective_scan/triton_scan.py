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

from ..launch import optional_ptr, strides
from .ref import as_grouped
from .torch_scan import selective_scan_torch
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


def _state_strides(x: torch.Tensor | None, *names: str) -> dict[str, int]:
    """Keyword strides (batch, segment, state, channel) of a state tensor: x is (batch, n_seg,
    dstate, dim), or (batch, dim, dstate) read as one segment (segment stride 0), or None (all 0)."""
    if x is not None and x.dim() == 3:
        batch_name, segment_name, state_name, channel_name = names
        return {batch_name: x.stride(0), segment_name: 0, state_name: x.stride(2), channel_name: x.stride(1)}
    return strides(x, *names)


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
    carry_in_or_stand_in = optional_ptr(carry_in, carry_out)
    grid = (triton.cdiv(dim, cfg.block_d), batch)
    combine_states_kernel[grid](
        local_ptr=local, dtsum_ptr=dtsum, reset_ptr=optional_ptr(reset, dtsum), A_ptr=A,
        carry_in_ptr=carry_in_or_stand_in, out_ptr=out, carry_out_ptr=carry_out,
        **strides(A, "stride_Ad", "stride_An"),
        **strides(carry_in_or_stand_in, "stride_cib", "stride_cid", "stride_cin"),
        **strides(carry_out, "stride_cob", "stride_cod", "stride_con"),
        dim=dim, n_seg=n_seg,
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
    zz = optional_ptr(z, u)  # z's strides are u's when z is absent
    flags = _flags(D, z, delta_bias, delta_softplus, seq_idx)

    def launch(h0, write_out, save_ckpt, save_end):
        h0_or_stand_in = optional_ptr(h0, hend)
        scan_fwd_kernel[(n_dblocks, batch, n_seg)](
            u_ptr=u, delta_ptr=delta, z_ptr=zz, out_ptr=out, A_ptr=A, B_ptr=B4, C_ptr=C4,
            Dskip_ptr=optional_ptr(D, A), bias_ptr=optional_ptr(delta_bias, A),
            seq_ptr=optional_ptr(seq_idx, dtsum), h0_ptr=h0_or_stand_in, ckpt_ptr=ckpt, hend_ptr=hend,
            dtsum_ptr=dtsum, reset_ptr=optional_ptr(reset, dtsum),
            **strides(u, "stride_ub", "stride_ud", "stride_ul"),
            **strides(delta, "stride_deltab", "stride_deltad", "stride_deltal"),
            **strides(zz, "stride_zb", "stride_zd", "stride_zl"),
            **strides(out, "stride_ob", "stride_od", "stride_ol"),
            **strides(A, "stride_Ad", "stride_An"),
            **strides(B4, "stride_Bb", "stride_Bg", "stride_Bn", "stride_Bl"),
            **strides(C4, "stride_Cb", "stride_Cg", "stride_Cn", "stride_Cl"),
            **strides(seq_idx, "stride_seqb", "stride_seql"),
            **_state_strides(h0_or_stand_in, "stride_h0b", "stride_h0s", "stride_h0n", "stride_h0d"),
            **_state_strides(hend, "stride_heb", "stride_hes", "stride_hen", "stride_hed"),
            L=L, dim=dim, dim_per_group=dpg, n_seg=n_seg, seg_len=cfg.seg_len, n_chunks=n_chunks,
            chunk_len=cfg.chunk_len,
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
    seq = optional_ptr(seq_idx, ckpt)
    zz = optional_ptr(z, u)  # z's strides are u's when z is absent
    flags = _flags(D, z, delta_bias, delta_softplus, seq_idx)
    grid = (n_dblocks, batch, n_seg)

    if n_seg > 1:
        q = torch.empty(batch, n_seg, dstate, dim, **f32)
        adjoint_local_kernel[grid](
            delta_ptr=delta, z_ptr=zz, dout_ptr=dout, A_ptr=A, C_ptr=C4,
            bias_ptr=optional_ptr(delta_bias, A), seq_ptr=seq, q_ptr=q,
            **strides(delta, "stride_deltab", "stride_deltad", "stride_deltal"),
            **strides(zz, "stride_zb", "stride_zd", "stride_zl"),
            **strides(dout, "stride_dob", "stride_dod", "stride_dol"),
            **strides(A, "stride_Ad", "stride_An"),
            **strides(C4, "stride_Cb", "stride_Cg", "stride_Cn", "stride_Cl"),
            **strides(seq_idx, "stride_seqb", "stride_seql"),
            L=L, dim=dim, dim_per_group=dpg, n_seg=n_seg, seg_len=cfg.seg_len,
            HAS_Z=flags["HAS_Z"], HAS_BIAS=flags["HAS_BIAS"], DELTA_SOFTPLUS=flags["DELTA_SOFTPLUS"],
            HAS_SEQ_IDX=flags["HAS_SEQ_IDX"], BLOCK_D=bd, DSTATE=dstate, num_warps=nw,
            VEC_BC=vector_rows_ok(C4),
        )  # fmt: skip
        gend, _ = _combine(q, dtsum, reset, A, dlast, True, cfg)  # (batch, n_seg, dstate, dim)
    else:
        gend = dlast  # (batch, dim, dstate) or None

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
        u_ptr=u, delta_ptr=delta, z_ptr=zz, dout_ptr=dout, A_ptr=A, B_ptr=B4, C_ptr=C4,
        Dskip_ptr=optional_ptr(D, A), bias_ptr=optional_ptr(delta_bias, A), seq_ptr=seq,
        ckpt_ptr=ckpt, gend_ptr=optional_ptr(gend, ckpt), scratch_ptr=scratch,
        du_ptr=du, ddelta_ptr=ddelta, dz_ptr=dz, dB_ptr=dB_part, dC_ptr=dC_part, dA_ptr=dA_part,
        dD_ptr=dD_part, dbias_ptr=dbias_part, dh0_ptr=dh0,
        **strides(u, "stride_ub", "stride_ud", "stride_ul"),
        **strides(delta, "stride_deltab", "stride_deltad", "stride_deltal"),
        **strides(zz, "stride_zb", "stride_zd", "stride_zl"),
        **strides(dout, "stride_dob", "stride_dod", "stride_dol"),
        **strides(du, "stride_gb", "stride_gd", "stride_gl"),  # du, ddelta and dz share one layout
        **strides(A, "stride_Ad", "stride_An"),
        **strides(B4, "stride_Bb", "stride_Bg", "stride_Bn", "stride_Bl"),
        **strides(C4, "stride_Cb", "stride_Cg", "stride_Cn", "stride_Cl"),
        **strides(seq_idx, "stride_seqb", "stride_seql"),
        **_state_strides(gend, "stride_geb", "stride_ges", "stride_gen", "stride_ged"),
        L=L, dim=dim, dim_per_group=dpg, n_dblocks=n_dblocks, n_seg=n_seg, seg_len=cfg.seg_len,
        n_chunks=n_chunks, chunk_len=cfg.chunk_len,
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
        return selective_scan_torch(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx
        )
    return SelectiveScanTriton.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state,
                                     seq_idx, config)  # fmt: skip
