"""Named model sizes: ``get(name)`` returns a fresh config, ``names()`` lists them.

The paper's sizes (Gu & Dao 2023, Table 12 / ANCHORS.md) plus small ones for tests and CPU training.
``python -m mamba_lm.configs`` prints each one's parameter count (tied embeddings counted once).
This registry is the only place the sizes are defined: the training command's model group
(``python train.py model=mamba_130m``) takes them from here (``mamba_lm.trainer.config_store``).
Every size has the GPT-NeoX vocabulary (vocab_size 50277, the config classes' default); a training
run replaces it with its data's vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from .build import build_model
from .config import MambaConfig, TransformerConfig

_REGISTRY: dict[str, Callable[[], MambaConfig | TransformerConfig]] = {
    # Mamba, the paper's sizes.
    "mamba_130m": lambda: MambaConfig(d_model=768, n_layer=24),
    "mamba_370m": lambda: MambaConfig(d_model=1024, n_layer=48),
    "mamba_790m": lambda: MambaConfig(d_model=1536, n_layer=48),
    "mamba_1.4b": lambda: MambaConfig(d_model=2048, n_layer=48),
    # Transformer++, the paper's sizes (half the layers: each has attention and an MLP).
    "transformer_125m": lambda: TransformerConfig(d_model=768, n_layer=12, n_head=12),
    # MLP width 2688 (2.625 x d_model) as the 350.4M Transformer++ measured in ANCHORS.md; the LLaMA rule
    # (8/3 x d_model rounded up to 256) would give 2816 and 359.8M parameters.
    "transformer_350m": lambda: TransformerConfig(d_model=1024, n_layer=24, n_head=16, d_intermediate=2688),
    "transformer_760m": lambda: TransformerConfig(d_model=1536, n_layer=24, n_head=16),
    "transformer_1.3b": lambda: TransformerConfig(d_model=2048, n_layer=24, n_head=32),
    # Small: CPU training runs and quick experiments (mamba_small is train.py's default model).
    "mamba_small": lambda: MambaConfig(d_model=256, n_layer=8),
    "transformer_small": lambda: TransformerConfig(d_model=256, n_layer=4, n_head=4),
    # S4D: the diagonal, time-invariant SSM in the Mamba LM's blocks, S4D-Lin init (d_state real dims =
    # d_state / 2 complex modes).
    "s4d_small": lambda: MambaConfig(
        d_model=256, n_layer=8, d_state=64, ssm_cfg={"layer": "S4D", "init": "lin"}
    ),
    # Tiny: tests and smoke runs.
    "mamba_tiny": lambda: MambaConfig(d_model=64, n_layer=2),
    "transformer_tiny": lambda: TransformerConfig(d_model=64, n_layer=1, n_head=2),
    "s4d_tiny": lambda: MambaConfig(
        d_model=64, n_layer=2, d_state=16, ssm_cfg={"layer": "S4D", "init": "lin"}
    ),
    # The Mamba block with S4D (time-invariant) in place of S6: the Mamba paper's "Mamba / S4" rows.
    "mamba_s4d_tiny": lambda: MambaConfig(
        d_model=64, n_layer=2, d_state=16, ssm_cfg={"layer": "MambaS4D", "init": "lin"}
    ),
}


def names() -> list[str]:
    """Every registered name, in registration order."""
    return list(_REGISTRY)


def get(name: str, **overrides) -> MambaConfig | TransformerConfig:
    """A fresh config for ``name``, with field ``overrides`` (e.g. ``vocab_size=256``) applied."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model size {name!r}; known: {', '.join(names())}")
    config = _REGISTRY[name]()
    return dataclasses.replace(config, **overrides) if overrides else config


def count_parameters(config: MambaConfig | TransformerConfig) -> int:
    """Parameters of the model ``config`` describes (tied embeddings once), built on the meta device."""
    model = build_model(config, device=torch.device("meta"))
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    print(f"{'name':<18} {'kind':<12} {'layers':>6} {'d_model':>7} {'params':>15}")
    for name in names():
        config = get(name)
        kind = config.layer if isinstance(config, MambaConfig) else "Transformer"
        count = count_parameters(config)
        print(
            f"{name:<18} {kind:<12} {config.n_layer:>6} {config.d_model:>7} {count:>15,} ({count / 1e6:.1f}M)"
        )


if __name__ == "__main__":
    main()
