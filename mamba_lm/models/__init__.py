"""The models: Mamba/S4D and Transformer++ language models, and the sequence classifier."""

from .lm import CausalLMOutput, LMHeadModel
from .mamba_lm import MambaLMHeadModel
from .transformer_lm import TransformerLMHeadModel

__all__ = ["CausalLMOutput", "LMHeadModel", "MambaLMHeadModel", "TransformerLMHeadModel"]
