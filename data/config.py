"""Typed data configs: one dataclass per ``kind``, every field documented where declared.

``configs/data/*.yaml`` fill these. :func:`parse_data_config` turns the Hydra ``data`` node (a
DictConfig or a plain dict) into the dataclass of its ``kind``, failing before any work with a
message that names a misspelled key, a wrong type or a bad value. The dataclasses live beside
their data: :mod:`data.lm.config`, :mod:`data.synthetic.config`, :mod:`data.lra.config`.
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
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf  # only present when called from Hydra

        return OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return {
            key: to_plain_dict(value) if isinstance(value, Mapping) else value
            for key, value in config.items()
        }
    raise TypeError(f"a data config must be a mapping or DictConfig, got {type(config).__name__}")


def parse_data_config(config: Any) -> Any:
    """The typed config (one of CONFIG_TYPES' values) for a ``data`` node; clear errors on bad keys/values."""
    mapping = to_plain_dict(config)
    kind = mapping.get("kind")
    if kind not in CONFIG_TYPES:
        raise ValueError(f"data.kind must be one of {sorted(CONFIG_TYPES)}, got {kind!r}")
    return _from_mapping(CONFIG_TYPES[kind], mapping, "data")


def _from_mapping(cls: type, mapping: Mapping[str, Any], where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{where} must be a mapping, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known keys: {names}")
    return cls(**{key: _coerce(hints[key], value, f"{where}.{key}") for key, value in mapping.items()})


def _coerce(annotation: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None:
            if type(None) in options:
                return None
            raise TypeError(f"{where} must not be null")
        (inner,) = [option for option in options if option is not type(None)]
        return _coerce(inner, value, where)
    if dataclasses.is_dataclass(annotation):
        return _from_mapping(annotation, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {value!r}")
        (inner,) = typing.get_args(annotation)
        return [_coerce(inner, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise TypeError(f"{where} must be an int, got {value!r}")
    if not isinstance(value, annotation):
        raise TypeError(f"{where} must be {annotation.__name__}, got {type(value).__name__} {value!r}")
    return value
