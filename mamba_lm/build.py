"""Build a model from any config.

Weight decay: parameters that must not decay carry ``_no_weight_decay = True`` (mamba_ssm's mark: Mamba's
A_log and D, S4D's SSM parameters); S4D's also carry S4's ``_optim`` dict. The trainer reads both.
"""

from __future__ import annotations

from torch import nn

from .config import ClassifierConfig, MambaConfig, TransformerConfig
from .models.classifier import SequenceClassifier
from .models.mamba_lm import MambaLMHeadModel
from .models.transformer_lm import TransformerLMHeadModel


def build_model(
    config: MambaConfig | TransformerConfig | ClassifierConfig, device=None, dtype=None
) -> nn.Module:
    """The model a config describes: MambaConfig -> MambaLMHeadModel (Mamba or S4D mixers),
    TransformerConfig -> TransformerLMHeadModel, ClassifierConfig -> SequenceClassifier."""
    if isinstance(config, MambaConfig):
        return MambaLMHeadModel(config, device=device, dtype=dtype)
    if isinstance(config, TransformerConfig):
        return TransformerLMHeadModel(config, device=device, dtype=dtype)
    if isinstance(config, ClassifierConfig):
        return SequenceClassifier(config, device=device, dtype=dtype)
    raise TypeError(
        f"build_model takes a MambaConfig, TransformerConfig or ClassifierConfig, got {type(config).__name__}"
    )
