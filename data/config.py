"""Typed data configs: one dataclass per ``kind``, every field documented where declared.

``configs/data/*.yaml`` fill these. :func:`parse_data_config` turns the Hydra ``data`` node (a
DictConfig or a plain dict) into the dataclass of its ``kind`` through OmegaConf (the dataclass is
the structured config that checks and converts the values, as for the training config), failing
before any work with a message that names a misspelled key, a wrong type or a bad value. The
dataclasses live beside their data: :mod:`data.lm.config`, :mod:`data.synthetic.config`,
:mod:`data.lra.config`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from mamba_lm.data.lm.config import LMDataConfig, TextDatasetConfig, TokenizerConfig, ValidationConfig
from mamba_lm.data.lra.config import (
    ImageConfig,
    ListOpsConfig,
    LRAConfig,
    PathfinderConfig,
    RetrievalConfig,
    TextConfig,
)
from mamba_lm.data.synthetic.config import InductionHeadsConfig, SelectiveCopyingConfig
from omegaconf import DictConfig, Node, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

__all__ = [
    "CONFIG_TYPES",
    "ImageConfig",
    "InductionHeadsConfig",
    "LMDataConfig",
    "LRAConfig",
    "ListOpsConfig",
    "PathfinderConfig",
    "RetrievalConfig",
    "SelectiveCopyingConfig",
    "TextConfig",
    "TextDatasetConfig",
    "TokenizerConfig",
    "ValidationConfig",
    "parse_data_config",
    "to_plain_dict",
]

CONFIG_TYPES: dict[str, type] = {
    "lm": LMDataConfig,
    "selective_copying": SelectiveCopyingConfig,
    "induction_heads": InductionHeadsConfig,
    "lra_listops": ListOpsConfig,
    "lra_text": TextConfig,
    "lra_retrieval": RetrievalConfig,
    "lra_image": ImageConfig,
    "lra_pathfinder": PathfinderConfig,
    "lra_pathx": PathfinderConfig,
}
"""Data config type by ``kind``."""


# ----------------------------------------------------------------------------- parsing
def to_plain_dict(config: Any) -> dict[str, Any]:
    """A plain dict from a DictConfig (resolved), a mapping or a config dataclass."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return {
            key: to_plain_dict(value) if isinstance(value, Mapping) else value
            for key, value in config.items()
        }
    raise TypeError(f"a data config must be a mapping or DictConfig, got {type(config).__name__}")


def parse_data_config(config: Any) -> Any:
    """The typed config (one of CONFIG_TYPES' values) for a ``data`` node; clear errors on bad keys/values.

    Raises ValueError for an unknown ``kind`` or key and for a value out of range (the dataclass's own
    check), TypeError for a value of the wrong type; each message names the key (``data.seqlen``).
    """
    mapping = to_plain_dict(config)
    kind = mapping.get("kind")
    if kind not in CONFIG_TYPES:
        raise ValueError(f"data.kind must be one of {sorted(CONFIG_TYPES)}, got {kind!r}")
    schema = OmegaConf.structured(CONFIG_TYPES[kind])
    try:
        return OmegaConf.to_object(OmegaConf.merge(schema, mapping))
    except ConfigKeyError as error:
        parent = "".join(f".{part}" for part in str(error.full_key).split(".")[:-1])
        owner = error.object_type
        known = [field.name for field in dataclasses.fields(owner)]
        raise ValueError(
            f"data{parent}: unknown key(s) [{error.key!r}] for {owner.__name__}; known keys: {known}"
        ) from None
    except ValidationError as error:
        raise TypeError(_type_error(error)) from None


def _type_error(error: ValidationError) -> str:
    """``data.KEY must be TYPE, got VALUE`` for a value OmegaConf could not convert to its field's type."""
    where = f"data.{error.full_key}" if error.full_key else "data"
    owner = error.object_type
    if dataclasses.is_dataclass(owner) and error.key in {field.name for field in dataclasses.fields(owner)}:
        expected = _type_name(typing.get_type_hints(owner)[error.key])
        value = (
            error.value._value() if isinstance(error.value, Node) else error.value
        )  # unwrap OmegaConf's node
        return f"{where} must be {expected}, got {type(value).__name__} {value!r}"
    return f"{where}: {str(error).splitlines()[0]}"


def _type_name(annotation: Any) -> str:
    """'int', 'int or null', 'a list of str' ..."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_type_name(argument) for argument in arguments) + " or null"
    if typing.get_origin(annotation) is list:
        return f"a list of {_type_name(arguments[0])}"
    return getattr(annotation, "__name__", str(annotation))
