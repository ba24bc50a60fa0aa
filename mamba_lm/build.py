"""Build a model from any config, and the no-weight-decay rule the trainer reads."""

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


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Names of the parameters marked ``_no_weight_decay = True`` (Mamba's A_log and D, S4D's SSM parameters).

    The mark is mamba_ssm's convention; the trainer may exclude more (biases, norms, embeddings)."""
    return {name for name, p in model.named_parameters() if getattr(p, "_no_weight_decay", False)}
