"""Model configs as plain dicts with an ``arch`` key, as run configs and checkpoints store them.

``arch`` names the config class: "mamba" (``MambaConfig``, also an S4D LM through
``ssm_cfg: {layer: S4D}``), "transformer" (``TransformerConfig``), "classifier"
(``ClassifierConfig``). ``init_from`` (optional) is a folder whose weights a run starts from
(``mamba_lm.pretrained.load_pretrained_weights``). The other keys are that class's fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from mamba_lm.build import build_model
from mamba_lm.config import ClassifierConfig, MambaConfig, TransformerConfig

INIT_FROM = "init_from"
"""The model-section key naming pretrained weights to start from (not a field of the config classes)."""

ARCHITECTURES: dict[str, type] = {
    "mamba": MambaConfig,
    "transformer": TransformerConfig,
    "classifier": ClassifierConfig,
}


def arch_of(config: Any) -> str:
    """The ``arch`` name of a model config object."""
    for name, config_class in ARCHITECTURES.items():
        if type(config) is config_class:
            return name
    raise TypeError(
        f"unknown model config type {type(config).__name__}; expected one of {list(ARCHITECTURES)}"
    )


def model_config_to_dict(config: Any) -> dict[str, Any]:
    """``{"arch": ..., **fields}`` for a model config object."""
    return {"arch": arch_of(config), **dataclasses.asdict(config)}


def model_config_from_dict(values: dict[str, Any]) -> Any:
    """The model config object a ``{"arch": ..., **fields}`` dict describes (unknown keys are an error)."""
    values = dict(values)
    arch = values.pop("arch", None)
    values.pop(INIT_FROM, None)
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch must be one of {list(ARCHITECTURES)}, got {arch!r}")
    return ARCHITECTURES[arch].from_dict(values)


def build_model_from_dict(values: dict[str, Any]) -> nn.Module:
    """Build the (freshly initialized) model a ``{"arch": ..., **fields}`` dict describes."""
    return build_model(model_config_from_dict(values))


def fit_model_to_data(
    values: dict[str, Any], task: str, vocab_size: int | None, num_classes: int | None
) -> dict[str, Any]:
    """The model dict with its vocabulary (and classes) taken from the data.

    A language model gets ``vocab_size`` = the tokenizer's (the model pads it); a classifier gets
    ``num_classes`` and, unless it reads real-valued inputs (``vocab_size: 0``), the token vocabulary.
    Raises ValueError when the model kind does not suit the task.
    """
    values = dict(values)
    arch = values.get("arch")
    if task == "lm":
        if arch == "classifier":
            raise ValueError(
                "model.arch=classifier cannot train on a language-modelling data config (task 'lm')"
            )
        if not vocab_size:
            raise ValueError("the data module reports no vocab_size for a language-modelling task")
        values["vocab_size"] = int(vocab_size)
    elif task == "classification":
        if arch != "classifier":
            raise ValueError(
                f"data task 'classification' needs model.arch=classifier, got model.arch={arch!r}"
            )
        if not num_classes:
            raise ValueError("the data module reports no num_classes for a classification task")
        values["num_classes"] = int(num_classes)
        if values.get("vocab_size", 0) and vocab_size:
            values["vocab_size"] = int(vocab_size)
    else:
        raise ValueError(f"unknown data task {task!r}; expected 'lm' or 'classification'")
    return values
