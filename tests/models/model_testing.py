"""Helpers shared by the model tests: tiny configs, relative error, step-by-step decoding."""

from __future__ import annotations

import torch

from mamba_lm import InferenceParams, MambaConfig, TransformerConfig

VOCAB = 50  # padded to 56


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


def tiny_config(kind: str, **overrides):
    """Small fp32 test models: "mamba", "s4d", "mamba_s4d" (the Mamba block with S4D) or "transformer"."""
    layers = {"mamba": "Mamba1", "s4d": "S4D", "mamba_s4d": "MambaS4D"}
    if kind in layers:
        ssm_cfg = {"layer": layers[kind]}
        return MambaConfig(d_model=32, n_layer=2, vocab_size=VOCAB, d_state=8, ssm_cfg=ssm_cfg, **overrides)
    if kind == "transformer":
        return TransformerConfig(d_model=32, n_layer=2, n_head=4, vocab_size=VOCAB, **overrides)
    raise ValueError(kind)


def stepwise_logits(model, input_ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Logits of every position: the prompt in parallel form, then one recurrent step per token."""
    batch, seqlen = input_ids.shape
    params = InferenceParams(max_seqlen=seqlen, max_batch_size=batch)
    pieces = [model(input_ids[:, :prompt_len], inference_params=params).logits]
    params.seqlen_offset = prompt_len
    for t in range(prompt_len, seqlen):
        pieces.append(model(input_ids[:, t : t + 1], inference_params=params).logits)
        params.seqlen_offset += 1
    return torch.cat(pieces, dim=1)


def marked_no_weight_decay(model) -> set[str]:
    """Names of the parameters carrying mamba_ssm's ``_no_weight_decay = True`` mark."""
    return {name for name, p in model.named_parameters() if getattr(p, "_no_weight_decay", False)}
