"""Launch planning and autograd glue for the Triton norm kernels (see triton_kernels.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from ..launch import optional_ptr
from .checks import residual_dtype
from .triton_kernels import norm_bwd_kernel, norm_fwd_kernel


@dataclass(frozen=True)
class NormConfig:
    """How rows are cut into programs; `plan` picks one per width and device."""

    block_m: int  # rows per forward program (and per backward loop iteration)
    num_warps: int
    bwd_block_m: int
    bwd_num_warps: int
    bwd_programs: int  # backward programs (each owns a contiguous range of rows)


def plan(n_rows: int, n_cols: int, device: torch.device) -> NormConfig:
    """About 4K elements per forward tile and 2K per backward tile; enough backward programs to fill
    the GPU a few times over while keeping the (programs, d) partial sums of dweight small."""
    block_n = triton.next_power_of_2(n_cols)
    if device.type != "cuda":  # Triton's interpreter: small tiles, several programs and loop trips.
        return NormConfig(2, 1, 2, 1, bwd_programs=max(1, min(3, n_rows)))
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return NormConfig(
        block_m=max(1, 4096 // block_n),
        num_warps=min(16, max(8, block_n // 512)),  # 16 or more fp32 values of a tile per thread
        bwd_block_m=max(1, 2048 // block_n),
        bwd_num_warps=min(16, max(8, block_n // 256)),
        bwd_programs=max(1, min(4 * sms, n_rows)),
    )


def _rows(t: torch.Tensor | None) -> torch.Tensor | None:
    """(..., d) -> (rows, d) with unit stride along d (a view when possible)."""
    if t is None:
        return None
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def norm_forward(x, weight, bias, residual, eps, is_rms_norm, out_dtype, res_dtype, store_residual, cfg):
    """x, residual: (rows, d). Returns y (rows, d) out_dtype, z (the stored new_residual, or x itself
    when not stored), mean (rows,) fp32 or None, rstd (rows,) fp32."""
    n_rows, n_cols = x.shape
    y = torch.empty(n_rows, n_cols, dtype=out_dtype, device=x.device)
    z = torch.empty(n_rows, n_cols, dtype=res_dtype, device=x.device) if store_residual else x
    rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    mean = None if is_rms_norm else torch.empty_like(rstd)
    res = optional_ptr(residual, x)  # its row stride is x's when the residual is absent
    norm_fwd_kernel[(triton.cdiv(n_rows, cfg.block_m),)](
        X=x, RES=res, W=weight, B=optional_ptr(bias, weight), Y=y, RES_OUT=z, MEAN=optional_ptr(mean, rstd),
        RSTD=rstd, n_rows=n_rows, n_cols=n_cols,
        stride_x=x.stride(0), stride_res=res.stride(0), stride_y=y.stride(0), stride_res_out=z.stride(0),
        eps=eps,
        IS_RMS_NORM=is_rms_norm, HAS_RESIDUAL=residual is not None, HAS_BIAS=bias is not None,
        STORE_RESIDUAL=store_residual, BLOCK_M=cfg.block_m, BLOCK_N=triton.next_power_of_2(n_cols),
        num_warps=cfg.num_warps,
    )  # fmt: skip
    return y, z, mean, rstd


def norm_backward(dy, dres_out, z, weight, has_bias, mean, rstd, x_dtype, dres_dtype, cfg):
    """dy, dres_out (or None), z: (rows, d). Returns dx (rows, d) x_dtype, dres (rows, d) dres_dtype
    (dx itself when the dtypes agree; None without a residual), dweight and dbias (d,) fp32."""
    n_rows, n_cols = z.shape
    n_prog = cfg.bwd_programs
    dx = torch.empty(n_rows, n_cols, dtype=x_dtype, device=z.device)
    store_dres = dres_dtype is not None and dres_dtype != x_dtype
    dres = torch.empty(n_rows, n_cols, dtype=dres_dtype, device=z.device) if store_dres else dx
    dw_part = torch.empty(n_prog, n_cols, dtype=torch.float32, device=z.device)
    db_part = torch.empty_like(dw_part) if has_bias else dw_part
    dro = optional_ptr(dres_out, dy)  # its row stride is dy's when dres_out is absent
    norm_bwd_kernel[(n_prog,)](
        Z=z, W=weight, DY=dy, DRES_OUT=dro, DX=dx, DRES=dres, DW_PART=dw_part, DB_PART=db_part,
        MEAN=optional_ptr(mean, rstd), RSTD=rstd,
        n_rows=n_rows, n_cols=n_cols, rows_per_program=triton.cdiv(n_rows, n_prog),
        stride_z=z.stride(0), stride_dy=dy.stride(0), stride_dres_out=dro.stride(0),
        stride_dx=dx.stride(0), stride_dres=dres.stride(0),
        IS_RMS_NORM=mean is None, HAS_BIAS=has_bias, HAS_DRES_OUT=dres_out is not None,
        STORE_DRES=store_dres, BLOCK_M=cfg.bwd_block_m, BLOCK_N=triton.next_power_of_2(n_cols),
        num_warps=cfg.bwd_num_warps,
    )  # fmt: skip
    return (
        dx,
        dres if dres_dtype is not None else None,
        dw_part.sum(0),
        db_part.sum(0) if has_bias else None,
    )


class LayerNormTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, residual, eps, prenorm, residual_in_fp32, is_rms_norm, out_dtype, cfg):
        shape = x.shape
        x2, res2 = _rows(x), _rows(residual)
        res_dtype = residual_dtype(x, residual, residual_in_fp32)
        if cfg is None:
            cfg = plan(x2.shape[0], x2.shape[1], x.device)
        # new_residual is written when it is returned, or differs from x (a residual was added, or
        # it is kept in another dtype); otherwise the backward reads x itself.
        store_residual = prenorm or residual is not None or res_dtype != x.dtype
        y, z, mean, rstd = norm_forward(
            x2, weight, bias, res2, eps, is_rms_norm, out_dtype or x.dtype, res_dtype, store_residual, cfg
        )
        ctx.save_for_backward(z, weight, bias, mean, rstd)
        ctx.cfg, ctx.shape, ctx.x_dtype = cfg, shape, x.dtype
        ctx.res_dtype = residual.dtype if residual is not None else None
        ctx.prenorm = prenorm
        ctx.set_materialize_grads(False)
        y = y.view(shape)
        return (y, z.view(shape)) if prenorm else y

    @staticmethod
    def backward(ctx, dy, dres_out=None):
        z, weight, bias, mean, rstd = ctx.saved_tensors
        dy2 = _rows(dy) if dy is not None else torch.zeros_like(z, dtype=ctx.x_dtype)
        dx, dres, dw, db = norm_backward(
            dy2, _rows(dres_out), z, weight, bias is not None, mean, rstd, ctx.x_dtype, ctx.res_dtype, ctx.cfg
        )
        return (
            dx.view(ctx.shape),
            dw.to(weight.dtype),
            db.to(bias.dtype) if db is not None else None,
            dres.view(ctx.shape) if dres is not None else None,
            *([None] * 6),
        )


def layer_norm_triton(
    x, weight, bias=None, residual=None, eps=1e-5, prenorm=False, residual_in_fp32=False,
    is_rms_norm=False, out_dtype=None, config: NormConfig | None = None,
):  # fmt: skip
    """Arguments and results as ``layer_norm_fn`` (already validated); ``config`` overrides `plan`."""
    return LayerNormTriton.apply(
        x, weight, bias, residual, eps, prenorm, residual_in_fp32, is_rms_norm, out_dtype, config
    )
