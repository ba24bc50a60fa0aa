"""Mamba, S4D and Transformer++ models: mixers, language models, the LRA classifier, generation, HF interop.

Imports only torch, safetensors and this project's ``kernels`` (no Hydra, datasets or wandb), so it runs on
the GPU machine as is. ``mamba_lm.from_pretrained(path)`` loads a run, checkpoint, transformers or
reference-package folder (``mamba_lm.pretrained``); ``mamba_lm.hf`` (transformers) is imported on demand.
"""

from .build import build_model
from .config import ClassifierConfig, MambaConfig, TransformerConfig
from .generation import InferenceParams
from .models import CausalLMOutput, MambaLMHeadModel, TransformerLMHeadModel
from .models.classifier import SequenceClassifier
from .modules import S4D, CausalSelfAttention, Mamba
from .pretrained import from_pretrained, save_pretrained

__all__ = [
    "S4D",
    "CausalLMOutput",
    "CausalSelfAttention",
    "ClassifierConfig",
    "InferenceParams",
    "Mamba",
    "MambaConfig",
    "MambaLMHeadModel",
    "SequenceClassifier",
    "TransformerConfig",
    "TransformerLMHeadModel",
    "build_model",
    "from_pretrained",
    "save_pretrained",
]
