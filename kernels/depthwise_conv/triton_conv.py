"""Autograd glue and block-size planning for the Triton causal depthwise convolution."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from ..launch import optional_ptr, strides
from .checks import empty_like_layout, is_channel_last, weight_2d
from .triton_bwd import conv_bwd_dx_kernel, conv_bwd_gate_kernel
from .triton_fwd import conv_fwd_kernel


@dataclass(frozen=True)
class ConvConfig:
    """Tile sizes of the three kernels; `plan` picks them from the layout and problem size."""

    block_l: int  # forward: steps per tile
    block_d: int  # forward: channels per tile
    num_warps: int
    bwd_block_l: int  # backward pass 1 (g, dweight, dbias): steps per tile
    bwd_block_d: int
    bwd_num_warps: int
    bwd_tiles_per_program: int = 0  # tiles a pass-1 program walks (0: from the problem size)
    dx_block_l: int = 32  # backward pass 2 (dx from g): steps per tile
    dx_block_d: int = 128
    dx_num_warps: int = 4
    g_fp32: bool = False  # keep g = dy * silu'(pre) in fp32 between the passes (else in x's dtype)


def plan(x: torch.Tensor) -> ConvConfig:
    """Tiles wide along the contiguous axis: channels for channel-last x, time otherwise.

    Channel-last: the forward's 32 x 128 tiles at 4 warps measured best on an H200 (0.072 ms at
    16 x 1536 x 2048 bf16, floor 0.053). The backward's tiles are chosen from sm_90 compiles (not yet
    measured): pass 2 (dx) takes the forward's tiles (104 registers); pass 1 (pre, g and five column
    sums per tile) half as many steps (179 registers; 255 at 32 x 128). Seqlen-contiguous x: 16
    values per thread in both backward passes (110 and 157 registers).

    g travels between the passes in x's dtype: for bf16 x, dx gets one more bf16 rounding (relative
    2^-9 per term, the size of dx's own rounding); dweight and dbias are summed from the fp32 g.
    """
    if x.device.type != "cuda":  # Triton's interpreter: small tiles so that tiny tests use many programs
        return ConvConfig(
            8, 4, 1, 8, 4, 1, bwd_tiles_per_program=2, dx_block_l=8, dx_block_d=4, dx_num_warps=1
        )
    if is_channel_last(x):
        # Measured on the H200 at 16x1536x2048 bf16 (RESULTS.md): forward 32x128 w4 0.073 ms; pass 1
        # 16x64 w2 0.335 ms (16x128 w4 0.674, 32x128 w4 0.483); pass 2 32x128 w4 0.062 ms.
        return ConvConfig(32, 128, 4, 16, 64, 2, dx_block_l=32, dx_block_d=128, dx_num_warps=4)
    return ConvConfig(128, 32, 4, 64, 32, 4, dx_block_l=64, dx_block_d=32, dx_num_warps=4)


def backward_chunks(batch: int, dim: int, seqlen: int, x: torch.Tensor, cfg: ConvConfig) -> tuple[int, int]:
    """(tiles per program, number of chunks) of backward pass 1: long chunks keep the partial sums of
    dw and dbias small, enough programs (about 8 per SM) keep the GPU busy."""
    n_tiles = triton.cdiv(seqlen, cfg.bwd_block_l)
    n_sub = cfg.bwd_tiles_per_program
    if n_sub == 0:
        sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 1
        tiles = batch * triton.cdiv(dim, cfg.bwd_block_d) * n_tiles
        n_sub = max(1, min(64, tiles // (8 * sms)))
        n_sub = 1 << (n_sub.bit_length() - 1)  # a power of two
    return n_sub, triton.cdiv(n_tiles, n_sub)


def conv_forward(x, weight, bias, seq_idx, initial_states, silu, cfg: ConvConfig) -> torch.Tensor:
    """y (batch, dim, seqlen) in x's dtype and layout kind; weight (dim, width)."""
    batch, dim, seqlen = x.shape
    y = empty_like_layout(x)
    if y.numel() == 0:
        return y
    grid = (triton.cdiv(dim, cfg.block_d), triton.cdiv(seqlen, cfg.block_l), batch)
    conv_fwd_kernel[grid](
        x_ptr=x, w_ptr=weight, bias_ptr=optional_ptr(bias, weight), seq_ptr=optional_ptr(seq_idx, x),
        h_ptr=optional_ptr(initial_states, x), y_ptr=y,
        **strides(x, "stride_xb", "stride_xd", "stride_xl"),
        **strides(weight, "stride_wd", "stride_wk"),
        **strides(seq_idx, "stride_seqb", "stride_seql"),
        **strides(initial_states, "stride_hb", "stride_hd", "stride_hk"),
        **strides(y, "stride_yb", "stride_yd", "stride_yl"),
        L=seqlen, dim=dim,
        WIDTH=weight.shape[1], HAS_BIAS=bias is not None, HAS_SEQ=seq_idx is not None,
        HAS_INIT=initial_states is not None, SILU=silu,
        BLOCK_L=cfg.block_l, BLOCK_D=cfg.block_d, num_warps=cfg.num_warps,
    )  # fmt: skip
    return y


def conv_backward(dy, x, weight, bias, seq_idx, initial_states, silu, want_dinit, cfg: ConvConfig):
    """Returns dx (x's dtype and layout kind), dweight (dim, width) fp32, dbias (dim,) fp32 and
    dinitial (batch, dim, width - 1) fp32 or None. dy: (batch, dim, seqlen), any strides."""
    batch, dim, seqlen = x.shape
    width = weight.shape[1]
    f32 = dict(dtype=torch.float32, device=x.device)
    if x.numel() == 0:  # nothing flows back (the initial states' gradient stays 0)
        dinit = torch.zeros(batch, dim, width - 1, **f32) if want_dinit else None
        return empty_like_layout(x), torch.zeros(dim, width, **f32), torch.zeros(dim, **f32), dinit
    g, dw, dbias = backward_gate(dy, x, weight, bias, seq_idx, initial_states, silu, cfg)
    dx, dinit = backward_dx(g, x, weight, seq_idx, want_dinit, cfg)
    return dx, dw, dbias, dinit


def backward_gate(dy, x, weight, bias, seq_idx, initial_states, silu, cfg: ConvConfig):
    """Backward pass 1: (g, dweight (dim, width) fp32, dbias (dim,) fp32), g = dy * silu'(pre)
    (batch, dim, seqlen) in x's dtype (fp32 with cfg.g_fp32) and layout kind; without SiLU, g is dy."""
    batch, dim, seqlen = x.shape
    width = weight.shape[1]
    f32 = dict(dtype=torch.float32, device=x.device)
    g = empty_like_layout(x, torch.float32 if cfg.g_fp32 else x.dtype) if silu else dy
    n_sub, n_chunks = backward_chunks(batch, dim, seqlen, x, cfg)
    dw_part = torch.empty(batch * n_chunks, width, dim, **f32)
    dbias_part = torch.empty(batch * n_chunks, dim, **f32)
    grid = (triton.cdiv(dim, cfg.bwd_block_d), n_chunks, batch)
    conv_bwd_gate_kernel[grid](
        x_ptr=x, w_ptr=weight, bias_ptr=optional_ptr(bias, weight), seq_ptr=optional_ptr(seq_idx, x),
        h_ptr=optional_ptr(initial_states, x), dy_ptr=dy, g_ptr=g, dw_part_ptr=dw_part,
        dbias_part_ptr=dbias_part,
        **strides(x, "stride_xb", "stride_xd", "stride_xl"),
        **strides(weight, "stride_wd", "stride_wk"),
        **strides(seq_idx, "stride_seqb", "stride_seql"),
        **strides(initial_states, "stride_hb", "stride_hd", "stride_hk"),
        **strides(dy, "stride_dyb", "stride_dyd", "stride_dyl"),
        **strides(g, "stride_gb", "stride_gd", "stride_gl"),
        L=seqlen, dim=dim, n_chunks=n_chunks, n_sub=n_sub,
        WIDTH=width, HAS_BIAS=bias is not None, HAS_SEQ=seq_idx is not None,
        HAS_INIT=initial_states is not None, SILU=silu,
        BLOCK_L=cfg.bwd_block_l, BLOCK_D=cfg.bwd_block_d, num_warps=cfg.bwd_num_warps,
    )  # fmt: skip
    return g, dw_part.sum(0).t(), dbias_part.sum(0)


def backward_dx(g, x, weight, seq_idx, want_dinit, cfg: ConvConfig):
    """Backward pass 2: (dx in x's dtype and layout kind, dinitial (batch, dim, width - 1) fp32 or
    None) from g (batch, dim, seqlen), any strides and float dtype."""
    batch, dim, seqlen = x.shape
    width = weight.shape[1]
    assert cfg.dx_block_l >= width - 1, "a dx tile must cover the initial states"
    dx = empty_like_layout(x)
    dinit = torch.zeros(batch, dim, width - 1, dtype=torch.float32, device=x.device) if want_dinit else None
    n_tiles = triton.cdiv(seqlen, cfg.dx_block_l)
    grid = (triton.cdiv(dim, cfg.dx_block_d), n_tiles + (1 if want_dinit else 0), batch)
    conv_bwd_dx_kernel[grid](
        g_ptr=g, w_ptr=weight, seq_ptr=optional_ptr(seq_idx, x), dx_ptr=dx, dh_ptr=optional_ptr(dinit, dx),
        **strides(g, "stride_gb", "stride_gd", "stride_gl"),
        **strides(weight, "stride_wd", "stride_wk"),
        **strides(seq_idx, "stride_seqb", "stride_seql"),
        **strides(dx, "stride_dxb", "stride_dxd", "stride_dxl"),
        **strides(dinit, "stride_dhb", "stride_dhd", "stride_dhk"),
        L=seqlen, dim=dim, n_tiles=n_tiles,
        WIDTH=width, HAS_SEQ=seq_idx is not None, WANT_DINIT=want_dinit,
        BLOCK_L=cfg.dx_block_l, BLOCK_D=cfg.dx_block_d, num_warps=cfg.dx_num_warps,
    )  # fmt: skip
    return dx, dinit


class CausalConv1dTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, seq_idx, initial_states, silu, cfg):
        w = weight_2d(weight)
        y = conv_forward(x, w, bias, seq_idx, initial_states, silu, cfg)
        ctx.save_for_backward(x, weight, bias, seq_idx, initial_states)
        ctx.silu, ctx.cfg = silu, cfg
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, seq_idx, initial_states = ctx.saved_tensors
        want_dinit = initial_states is not None and ctx.needs_input_grad[4]
        dx, dw, dbias, dinit = conv_backward(
            dy, x, weight_2d(weight), bias, seq_idx, initial_states, ctx.silu, want_dinit, ctx.cfg
        )
        dw = dw.reshape(weight.shape).to(weight.dtype)
        dbias = dbias.to(bias.dtype) if bias is not None else None
        dinit = dinit.to(initial_states.dtype) if dinit is not None else None
        return dx, dw, dbias, None, dinit, None, None


def causal_conv1d_triton(x, weight, bias, seq_idx, silu, initial_states, config: ConvConfig | None = None):
    """The Triton convolution (see ``kernels.causal_conv1d_fn``); y in x's dtype and layout kind."""
    if seq_idx is not None and seq_idx.dtype != torch.int32:
        seq_idx = seq_idx.to(torch.int32)
    return CausalConv1dTriton.apply(x, weight, bias, seq_idx, initial_states, bool(silu), config or plan(x))
