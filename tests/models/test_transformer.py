"""Transformer++: MLP width, attention against an explicit softmax, RoPE, no biases, init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from model_testing import VOCAB, relative_error, tiny_config

from mamba_lm import CausalSelfAttention, TransformerConfig, TransformerLMHeadModel
from mamba_lm.modules.rotary import apply_rotary, rotary_cos_sin


def explicit_attention(layer: CausalSelfAttention, hidden: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) v, with RoPE as rotations of (i, i + head_dim/2) pairs."""
    batch, seqlen, d = hidden.shape
    h, hd = layer.n_head, layer.head_dim
    q, k, v = layer.in_proj(hidden).view(batch, seqlen, 3, h, hd).unbind(2)
    angle = torch.arange(seqlen)[:, None] * layer.rope_theta ** (-torch.arange(0, hd, 2) / hd)  # (L, hd/2)
    cos, sin = angle.cos()[None, :, None], angle.sin()[None, :, None]

    def rotate(x):
        first, second = x[..., : hd // 2], x[..., hd // 2 :]
        return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)

    q, k = rotate(q), rotate(k)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
    scores = scores.masked_fill(~torch.ones(seqlen, seqlen, dtype=torch.bool).tril(), float("-inf"))
    y = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(batch, seqlen, d)
    return layer.out_proj(y)


def test_mlp_width_follows_llama():
    assert TransformerConfig(d_model=768).mlp_hidden_dim == 2048
    assert TransformerConfig(d_model=1024, n_head=16).mlp_hidden_dim == 2816  # 2730.7 rounded up to 256
    assert TransformerConfig(d_model=2048, n_head=32).mlp_hidden_dim == 5632
    assert TransformerConfig(d_model=1024, n_head=16, d_intermediate=2688).mlp_hidden_dim == 2688


def test_attention_matches_explicit_softmax():
    layer = CausalSelfAttention(d_model=32, n_head=4, rope_theta=100.0)
    hidden = torch.randn(2, 9, 32)
    assert relative_error(layer(hidden), explicit_attention(layer, hidden)) < 1e-5


def test_rope_scores_depend_only_on_relative_position():
    q, k = torch.randn(1, 1, 2, 16), torch.randn(1, 1, 2, 16)

    def score(pos_q: int, pos_k: int) -> torch.Tensor:
        rq = apply_rotary(q, *rotary_cos_sin(torch.tensor([[pos_q]]), 16, 10000.0))
        rk = apply_rotary(k, *rotary_cos_sin(torch.tensor([[pos_k]]), 16, 10000.0))
        return (rq * rk).sum(-1)

    assert torch.allclose(score(7, 3), score(104, 100), atol=1e-4)
    assert not torch.allclose(score(7, 3), score(7, 5), atol=1e-3)


def test_no_biases_tied_embeddings_and_scaled_init():
    n_layer = 3
    model = TransformerLMHeadModel(TransformerConfig(d_model=64, n_layer=n_layer, n_head=4, vocab_size=100))
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert model.lm_head.weight is model.backbone.embedding.weight
    for layer in model.backbone.layers:
        for linear, fan_in in ((layer.mixer.out_proj, 64), (layer.mlp.fc2, model.config.mlp_hidden_dim)):
            bound = 1 / math.sqrt(fan_in) / math.sqrt(2 * n_layer)
            assert bound * 0.9 < linear.weight.abs().max() <= bound


def test_causal():
    model = TransformerLMHeadModel(tiny_config("transformer"))
    ids = torch.randint(0, VOCAB, (1, 10))
    changed = ids.clone()
    changed[0, 6] = (ids[0, 6] + 1) % VOCAB
    a, b = model(ids).logits, model(changed).logits
    assert torch.equal(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_trains():
    model = TransformerLMHeadModel(tiny_config("transformer"))
    ids = torch.randint(0, VOCAB, (4, 12))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        logits = model(ids).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="not divisible by n_head"):
        TransformerConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="even"):
        TransformerConfig(d_model=12, n_head=4)
