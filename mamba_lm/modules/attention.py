"""Causal multi-head self-attention with RoPE, through ``scaled_dot_product_attention``, and a KV cache."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .packing import document_positions, same_document_mask
from .rotary import apply_rotary, rotary_cos_sin


class CausalSelfAttention(nn.Module):
    """Input and output (batch, seqlen, d_model). Fused q, k, v projection ``in_proj``, then ``out_proj``."""

    def __init__(
        self,
        d_model: int,
        n_head: int,
        rope_theta: float = 10000.0,
        bias: bool = False,
        layer_idx: int | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if d_model % n_head != 0 or (d_model // n_head) % 2 != 0:
            raise ValueError(
                f"attention: d_model={d_model} must split into n_head={n_head} heads of even size"
            )
        self.d_model, self.n_head, self.head_dim = d_model, n_head, d_model // n_head
        self.rope_theta, self.layer_idx = rope_theta, layer_idx
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias, device=device, dtype=dtype)  # rows: q, k, v
        self.out_proj = nn.Linear(d_model, d_model, bias=bias, device=device, dtype=dtype)

    def forward(
        self, hidden_states: torch.Tensor, seq_idx: torch.Tensor | None = None, inference_params=None
    ):
        """hidden_states: (batch, seqlen, d_model). seq_idx: (batch, seqlen) int: attention stays inside each
        packed document and RoPE positions restart with it. With ``inference_params``, keys and values are
        cached; after the prompt, one token per call. Returns (batch, seqlen, d_model)."""
        batch, seqlen, _ = hidden_states.shape
        q, k, v = self.in_proj(hidden_states).view(batch, seqlen, 3, self.n_head, self.head_dim).unbind(dim=2)
        offset = 0 if inference_params is None else inference_params.seqlen_offset
        if seq_idx is not None:
            if inference_params is not None:
                raise ValueError(
                    "attention: seq_idx (packed documents) cannot be combined with an inference cache"
                )
            positions = document_positions(seq_idx)[1]
        else:
            positions = torch.arange(offset, offset + seqlen, device=q.device).expand(batch, seqlen)
        cos, sin = rotary_cos_sin(positions, self.head_dim, self.rope_theta)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

        if inference_params is not None:
            if offset > 0 and seqlen != 1:
                raise ValueError(
                    f"attention: after the prompt the cache takes one token per call, got seqlen={seqlen}"
                )
            k_cache, v_cache = inference_params.layer_state(self, batch)
            if offset + seqlen > k_cache.shape[1]:
                raise ValueError(
                    f"attention: KV cache holds {k_cache.shape[1]} positions, asked for {offset + seqlen}"
                )
            k_cache[:batch, offset : offset + seqlen] = k
            v_cache[:batch, offset : offset + seqlen] = v
            k = k_cache[:batch, : offset + seqlen].to(q.dtype)
            v = v_cache[:batch, : offset + seqlen].to(q.dtype)

        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, n_head, len, head_dim)
        if seq_idx is not None:
            causal = torch.ones(seqlen, seqlen, dtype=torch.bool, device=q.device).tril()
            mask = (same_document_mask(seq_idx) & causal)[:, None]  # (batch, 1, seqlen, seqlen)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            # One new token attends to every cached position; a prompt attends causally.
            y = F.scaled_dot_product_attention(q, k, v, is_causal=offset == 0)
        return self.out_proj(y.transpose(1, 2).reshape(batch, seqlen, self.d_model))

    def allocate_inference_cache(
        self, batch_size: int, max_seqlen: int, dtype=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(k_cache, v_cache), each (batch, max_seqlen, n_head, head_dim), RoPE already applied to keys;
        in ``dtype``, else autocast's dtype when autocast is on, else the weights' dtype."""
        weight = self.in_proj.weight
        shape = (batch_size, max_seqlen, self.n_head, self.head_dim)
        if dtype is None:
            autocast = torch.is_autocast_enabled(weight.device.type)
            dtype = torch.get_autocast_dtype(weight.device.type) if autocast else weight.dtype
        return torch.zeros(shape, device=weight.device, dtype=dtype), torch.zeros(
            shape, device=weight.device, dtype=dtype
        )
