"""The memory-lean training path of the Mamba mixer up to out_proj, as one autograd Function.

    xz     = h @ in_proj.T                                              (batch, seqlen, 2 d_inner)
    u      = silu(causal conv(x))               x, z = xz split        (batch, seqlen, d_inner) each
    x_dbl  = u @ x_proj.T                        split [dt, B, C]       (batch, seqlen, dt_rank + 2 d_state)
    delta  = dt @ dt_proj.T                                             (batch, seqlen, d_inner)
    y      = selective_scan(u, delta, A = -exp(A_log), B, C, D, z, softplus(. + dt_bias))

Composed from autograd ops, this region keeps u, delta and x_dbl for the backward besides h and xz.
The Function keeps only h, xz (the in_proj output), x_dbl and the scan's chunk states, and recomputes
u (one conv) and delta (one small GEMM) in the backward. in_proj is inside so that the gradients of
x (from the conv) and z (from the scan) feed its two halves directly, without being joined into one
(batch, seqlen, 2 d_inner) tensor first.

Saved bytes per token and layer under bf16 autocast (d = d_model, d_inner = 2d, K = dt_rank +
2 d_state, S = the scan's fp32 state every chunk_len steps = d_inner * d_state * 4 / chunk_len: 2d at
64-step chunks, 8d at the 16-step chunks of the current backward plan, d_state 16). Around this
region the norm keeps its fp32 input (4d) and out_proj its bf16 input y (4d) in every version:

    old PyTorch conv (shifted fp32 multiply-adds), composed:  in_proj input 2d + xz 8d + conv
        pre-activation (fp32) 8d + u 4d + delta 4d + x_dbl 2K + S     layer: 34d + 2K + S (+12d with seq_idx)
    conv kernel, composed (``fused = False``): h 2d + xz 8d + u 4d + delta 4d + x_dbl 2K + S
                                                                      layer: 26d + 2K + S
    this Function: h 2d + xz 8d + x_dbl 2K + S                        layer: 18d + 2K + S

Mamba-130M (d = 768, K = 80) with 64-step chunks: 27.8 KB -> 15.5 KB per token and layer, 21.9 GB ->
12.2 GB of saved activations for 24 layers at 32,768 tokens (tests/models/test_fused_path.py measures
the sum with saved-tensor hooks); the 16-step chunks add 4.6 KB per token and layer.

On the Triton scan (CUDA, or the CPU under ``TRITON_INTERPRET=1``) the scan's forward and backward
are called directly. Elsewhere (the PyTorch scan on a CPU) the scan's own autograd graph is kept from
the forward to the backward; only the conv and delta are recomputed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mamba_lm.kernels import causal_conv1d_fn, selective_scan_fn
from mamba_lm.kernels.selective_scan.interface import scan_runs_triton
from mamba_lm.kernels.selective_scan.ref import as_grouped


def mamba_inner(
    hidden: torch.Tensor,
    in_proj_weight: torch.Tensor,
    in_proj_bias: torch.Tensor | None,
    conv_weight: torch.Tensor,
    conv_bias: torch.Tensor | None,
    x_proj_weight: torch.Tensor,
    dt_proj_weight: torch.Tensor,
    dt_proj_bias: torch.Tensor,
    A_log: torch.Tensor,
    D: torch.Tensor,
    seq_idx: torch.Tensor | None = None,
) -> torch.Tensor:
    """The Mamba mixer from its input to the out_proj input, with a hand-written backward.

    hidden: (batch, seqlen, d_model). The matmuls run in autocast's dtype when autocast is on, else in
    hidden's dtype; the conv and the scan accumulate in fp32. in_proj_weight: (2 d_inner, d_model), rows
    x then z; in_proj_bias: (2 d_inner,) or None. conv_weight: (d_inner, 1, width) or (d_inner, width);
    conv_bias: (d_inner,) or None. x_proj_weight: (dt_rank + 2 d_state, d_inner); dt_proj_weight:
    (d_inner, dt_rank); dt_proj_bias, D: (d_inner,); A_log: (d_inner, d_state).
    seq_idx: (batch, seqlen) int32 (packed documents) or None.
    Returns y (batch, seqlen, d_inner) contiguous, in the compute dtype.
    """
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    return MambaInnerFn.apply(
        hidden, in_proj_weight, in_proj_bias, conv_weight, conv_bias, x_proj_weight, dt_proj_weight,
        dt_proj_bias, A_log, D, seq_idx, dtype,
    )  # fmt: skip


def _triton_scan():
    """The Triton scan's module, imported on the Triton path only: triton is optional (no wheels for
    macOS or Windows), and without it ``scan_runs_triton`` is False."""
    from mamba_lm.kernels.selective_scan import triton_scan

    return triton_scan


class MambaInnerFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, hidden, in_proj_weight, in_proj_bias, conv_weight, conv_bias, x_proj_weight, dt_proj_weight,
        dt_proj_bias, A_log, D, seq_idx, dtype,
    ):  # fmt: skip
        d_inner = in_proj_weight.shape[0] // 2
        dt_rank, d_state = dt_proj_weight.shape[1], A_log.shape[1]
        with torch.autocast(hidden.device.type, enabled=False):
            h = hidden.to(dtype)
            bias = in_proj_bias.to(dtype) if in_proj_bias is not None else None
            xz = F.linear(h, in_proj_weight.to(dtype), bias)  # (batch, seqlen, 2 d_inner)
            u = causal_conv1d_fn(xz[..., :d_inner].transpose(1, 2), conv_weight, conv_bias, seq_idx, "silu")
            x_dbl = F.linear(u.transpose(1, 2), x_proj_weight.to(dtype))  # (batch, seqlen, K)
            delta = F.linear(x_dbl[..., :dt_rank], dt_proj_weight.to(dtype))  # (batch, seqlen, d_inner)
            scan_args = _scan_args(xz, x_dbl, delta, u, A_log, D, dt_proj_bias, dt_rank, d_state)
            ctx.triton_scan = scan_runs_triton(u, d_state) and u.shape[-1] > 0
            if ctx.triton_scan:
                triton_scan = _triton_scan()
                ctx.scan_config = triton_scan.plan(u.shape[0], d_inner, 1, d_state, u.shape[-1], u.device)
                y, _, ckpt, dtsum, reset = triton_scan.scan_forward(
                    *scan_args, True, None, seq_idx, ctx.scan_config
                )
                scan_saved = (ckpt, dtsum, reset)
            else:
                scan_saved, ctx.scan_graph = (), _torch_scan_graph(scan_args, seq_idx)
                y = ctx.scan_graph[0].detach()
        ctx.save_for_backward(
            h, xz, x_dbl, in_proj_weight, in_proj_bias, conv_weight, conv_bias, x_proj_weight,
            dt_proj_weight, dt_proj_bias, A_log, D, seq_idx, *scan_saved,
        )  # fmt: skip
        ctx.hidden_dtype = hidden.dtype
        return y.transpose(1, 2)  # (batch, seqlen, d_inner), contiguous

    @staticmethod
    def backward(ctx, dy):
        h, xz, x_dbl, in_proj_weight, in_proj_bias, conv_weight, conv_bias = ctx.saved_tensors[:7]
        x_proj_weight, dt_proj_weight, dt_proj_bias, A_log, D, seq_idx = ctx.saved_tensors[7:13]
        dtype, d_inner = xz.dtype, xz.shape[-1] // 2
        dt_rank, d_state = dt_proj_weight.shape[1], A_log.shape[1]
        batch, seqlen, _ = xz.shape
        with torch.autocast(xz.device.type, enabled=False):
            # Recompute u (keeping the conv's graph for its backward) and delta.
            x = xz[..., :d_inner].transpose(1, 2).detach().requires_grad_()
            weight = conv_weight.detach().requires_grad_()
            bias = conv_bias.detach().requires_grad_() if conv_bias is not None else None
            with torch.enable_grad():
                u_graph = causal_conv1d_fn(x, weight, bias, seq_idx, "silu")
            u = u_graph.detach()
            dt_proj_w = dt_proj_weight.to(dtype)
            delta = F.linear(x_dbl[..., :dt_rank], dt_proj_w)
            dout = dy.transpose(1, 2)  # (batch, d_inner, seqlen)
            scan_args = _scan_args(xz, x_dbl, delta, u, A_log, D, dt_proj_bias, dt_rank, d_state)
            if ctx.triton_scan:
                ckpt, dtsum, reset = ctx.saved_tensors[13:]
                du, ddelta, dA, dB, dC, dD, dz, ddelta_bias, _ = _triton_scan().scan_backward(
                    dout, None, *scan_args, True, seq_idx, ckpt, dtsum, reset, ctx.scan_config
                )
            else:  # the PyTorch scan's graph, kept from the forward
                y_graph, leaves = ctx.scan_graph
                du, ddelta, dA, dB, dC, dD, dz, ddelta_bias = torch.autograd.grad(y_graph, leaves, dout)
                ctx.scan_graph = None
            dB, dC = dB[:, 0], dC[:, 0]  # (batch, d_state, seqlen)

            # delta = dt @ dt_proj.T
            ddelta_rows = ddelta.to(dtype).transpose(1, 2).reshape(-1, d_inner)  # (batch * seqlen, d_inner)
            dt_rows = x_dbl[..., :dt_rank].reshape(-1, dt_rank)
            d_dt_proj_weight = ddelta_rows.t() @ dt_rows  # (d_inner, dt_rank)
            # x_dbl = u @ x_proj.T, its gradient [d dt, dB, dC]
            dx_dbl = torch.cat(
                [(ddelta_rows @ dt_proj_w).view(batch, seqlen, dt_rank), dB.transpose(1, 2).to(dtype),
                 dC.transpose(1, 2).to(dtype)], dim=-1,
            ).view(-1, x_dbl.shape[-1])  # fmt: skip
            u_rows = u.transpose(1, 2).reshape(-1, d_inner)
            d_x_proj_weight = dx_dbl.t() @ u_rows  # (K, d_inner)
            du_rows = du.to(dtype).transpose(1, 2).reshape(-1, d_inner)  # a view when du is channel-last
            du_rows.addmm_(dx_dbl, x_proj_weight.to(dtype))
            dconv = torch.autograd.grad(
                u_graph,
                [t for t in (x, weight, bias) if t is not None],
                du_rows.view(batch, seqlen, d_inner).transpose(1, 2),
            )
            # xz = h @ in_proj.T, x and z halves taken separately
            dx_rows = dconv[0].transpose(1, 2).reshape(-1, d_inner)  # a view: dx is channel-last like x
            dz_rows = dz.to(dtype).transpose(1, 2).reshape(-1, d_inner)
            h_rows = h.reshape(-1, h.shape[-1])
            w_in = in_proj_weight.to(dtype)
            dh = (dx_rows @ w_in[:d_inner]).addmm_(dz_rows, w_in[d_inner:]).view(h.shape)
            d_in_proj_weight = torch.empty_like(w_in)
            torch.mm(dx_rows.t(), h_rows, out=d_in_proj_weight[:d_inner])
            torch.mm(dz_rows.t(), h_rows, out=d_in_proj_weight[d_inner:])
            d_in_proj_bias = None
            if in_proj_bias is not None:
                d_in_proj_bias = torch.cat([dx_rows.sum(0), dz_rows.sum(0)]).to(in_proj_bias.dtype)
        A = -torch.exp(A_log.float())
        return (
            dh.to(ctx.hidden_dtype), d_in_proj_weight.to(in_proj_weight.dtype), d_in_proj_bias,
            dconv[1], dconv[2] if bias is not None else None,
            d_x_proj_weight.to(x_proj_weight.dtype), d_dt_proj_weight.to(dt_proj_weight.dtype),
            ddelta_bias.to(dt_proj_bias.dtype), (dA * A).to(A_log.dtype), dD.to(D.dtype), None, None,
        )  # fmt: skip


def _scan_args(xz, x_dbl, delta, u, A_log, D, dt_proj_bias, dt_rank, d_state):
    """(u, delta, A, B, C, D, z, delta_bias) of the scan, as (batch, dim, seqlen) views of the
    channel-last tensors (B and C as (batch, 1, d_state, seqlen)); no copies."""
    d_inner = u.shape[1]
    B = x_dbl[..., dt_rank : dt_rank + d_state].transpose(1, 2)
    C = x_dbl[..., dt_rank + d_state :].transpose(1, 2)
    return (
        u, delta.transpose(1, 2), -torch.exp(A_log.float()), as_grouped(B), as_grouped(C), D.float(),
        xz[..., d_inner:].transpose(1, 2), dt_proj_bias.float(),
    )  # fmt: skip


def _torch_scan_graph(scan_args, seq_idx):
    """Run the PyTorch scan with autograd on detached leaves; returns (y, leaves) for the backward."""
    leaves = [arg.detach().requires_grad_() for arg in scan_args]
    u, delta, A, B, C, D, z, delta_bias = leaves
    with torch.enable_grad():
        y = selective_scan_fn(
            u, delta, A, B[:, 0], C[:, 0], D, z=z, delta_bias=delta_bias, delta_softplus=True, seq_idx=seq_idx
        )
    return y, leaves
