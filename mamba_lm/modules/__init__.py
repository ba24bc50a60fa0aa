"""Building blocks: the mixers (Mamba S6, S4D, the Mamba block with S4D, attention), MLP, norms, the
residual block."""

from .attention import CausalSelfAttention
from .block import Block
from .fusion import set_fused
from .mamba_mixer import Mamba
from .mamba_s4d import MambaS4D
from .mixers import MIXERS, build_mixer
from .mlp import GatedMLP
from .norm import RMSNorm, make_norm
from .s4d import S4D

__all__ = [
    "MIXERS",
    "Block",
    "CausalSelfAttention",
    "GatedMLP",
    "Mamba",
    "MambaS4D",
    "RMSNorm",
    "S4D",
    "build_mixer",
    "make_norm",
    "set_fused",
]
