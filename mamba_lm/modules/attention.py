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
        cached; after the prompt, one token per call (``step``). Returns (batch, seqlen, d_model)."""
        batch, seqlen, _ = hidden_states.shape
        cache = None
        if inference_params is not None:
            cache = inference_params.layer_state(self, batch, seq_idx)
            if inference_params.seqlen_offset > 0:
                return self.step(hidden_states, cache, inference_params)
            if seqlen > cache[0].shape[2]:
                raise ValueError(f"attention: KV cache holds {cache[0].shape[2]} positions, got {seqlen}")
        q, k, v = self.in_proj(hidden_states).view(batch, seqlen, 3, self.n_head, self.head_dim).unbind(dim=2)
        if seq_idx is not None:
            positions = document_positions(seq_idx)[1]
        else:
            positions = torch.arange(seqlen, device=q.device).expand(batch, seqlen)
        cos, sin = rotary_cos_sin(positions, self.head_dim, self.rope_theta)
        q, k, v = (t.transpose(1, 2) for t in (apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v))
        # q, k, v: (batch, n_head, seqlen, head_dim)
        if cache is not None:
            k_cache, v_cache = cache[:2]
            k_cache[:, :, :seqlen] = k
            v_cache[:, :, :seqlen] = v
        if seq_idx is not None:
            causal = torch.ones(seqlen, seqlen, dtype=torch.bool, device=q.device).tril()
            mask = (same_document_mask(seq_idx) & causal)[:, None]  # (batch, 1, seqlen, seqlen)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).reshape(batch, seqlen, self.d_model))

    def step(self, hidden_states: torch.Tensor, cache: tuple, inference_params) -> torch.Tensor:
        """One token after the prompt. hidden_states: (batch, 1, d_model); cache: this layer's state.

        The position comes from ``inference_params.position`` (a device tensor) when set, else from
        ``seqlen_offset``: the new key and value are written there, RoPE reads the precomputed tables
        there, and attention runs over the whole static cache with the later positions masked out.
        No shape depends on the position and nothing is read back to the host, so a captured CUDA
        graph replays this for every position. Returns (batch, 1, d_model)."""
        batch, seqlen, _ = hidden_states.shape
        if seqlen != 1:
            raise ValueError(
                f"attention: after the prompt the cache takes one token per call, got seqlen={seqlen}"
            )
        k_cache, v_cache, cos_table, sin_table = cache
        max_seqlen = k_cache.shape[2]
        position = inference_params.position
        if position is None:
            if inference_params.seqlen_offset >= max_seqlen:
                raise ValueError(
                    f"attention: KV cache holds {max_seqlen} positions, "
                    f"asked for {inference_params.seqlen_offset + 1}"
                )
            position = torch.full((1,), inference_params.seqlen_offset, device=k_cache.device)
        q, k, v = self.in_proj(hidden_states).view(batch, 1, 3, self.n_head, self.head_dim).unbind(dim=2)
        cos, sin = cos_table.index_select(0, position), sin_table.index_select(0, position)  # (1, 1, hd)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        k_cache.index_copy_(2, position, k.transpose(1, 2).to(k_cache.dtype))
        v_cache.index_copy_(2, position, v.transpose(1, 2).to(v_cache.dtype))
        visible = (torch.arange(max_seqlen, device=position.device) <= position)[None, :]  # (1, max_seqlen)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k_cache.to(q.dtype), v_cache.to(q.dtype), attn_mask=visible
        )  # (batch, n_head, 1, head_dim)
        return self.out_proj(y.transpose(1, 2).reshape(batch, 1, self.d_model))

    def allocate_inference_cache(
        self, batch_size: int, max_seqlen: int, dtype=None, device=None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(k_cache, v_cache, cos_table, sin_table). The caches: (batch, n_head, max_seqlen, head_dim),
        RoPE already applied to keys, in ``dtype``, else autocast's dtype when autocast is on, else the
        weights' dtype. The RoPE tables: (max_seqlen, 1, head_dim) fp32, computed once here.
        device: the weights' by default ("meta" sizes the cache without allocating it)."""
        weight = self.in_proj.weight
        device = weight.device if device is None else torch.device(device)
        shape = (batch_size, self.n_head, max_seqlen, self.head_dim)
        if dtype is None:
            autocast = weight.device.type != "meta" and torch.is_autocast_enabled(weight.device.type)
            dtype = torch.get_autocast_dtype(weight.device.type) if autocast else weight.dtype
        positions = torch.arange(max_seqlen, device=device)[None]
        cos, sin = rotary_cos_sin(positions, self.head_dim, self.rope_theta)  # (1, max_seqlen, 1, hd)
        return (
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
            cos[0],
            sin[0],
        )
