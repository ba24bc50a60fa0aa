"""Hydra structured-config schemas and the named model sizes, registered in Hydra's ConfigStore.

* ``train_schema`` (``RunConfig``) types the root: optim/, trainer/, logger/, seed, resume.
* ``model/mamba_schema``, ``model/transformer_schema``, ``model/classifier_schema`` type the model
  group. These schemas are generated from the model config dataclasses (``mamba_lm.config``), so they
  never drift from the fields the models accept.
* ``model/<name>`` for every named size of ``mamba_lm.configs`` (``model=mamba_130m``,
  ``model=transformer_tiny``, ...): each is that size's config in its schema, so the sizes are defined
  once, in ``mamba_lm/configs.py``, and ``model.d_model=512`` style overrides work on any of them.

A misspelled key or a value of the wrong type then fails when Hydra composes the config, before
any work, with a message naming the full key (e.g. ``trainer.max_step``). This module imports
Hydra; the rest of the trainer does not.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from hydra.core.config_store import ConfigStore

from mamba_lm import configs as named_sizes

from .config import RunConfig
from .model_factory import ARCHITECTURES, INIT_FROM, arch_of

_PRIMITIVES = (int, float, bool, str)


def _omegaconf_type(annotation: Any) -> Any:
    """The closest type OmegaConf can check: unions of several types become Any."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1 and members[0] in _PRIMITIVES:
            return members[0] | None
        return Any
    return annotation


def model_schema(config_class: type, arch: str) -> type:
    """A dataclass with ``arch``, ``init_from`` (a folder of weights to start from, or null) and every field
    of ``config_class`` (same defaults), for OmegaConf."""
    hints = typing.get_type_hints(config_class)
    fields: list[tuple[str, Any, dataclasses.Field]] = [
        ("arch", str, dataclasses.field(default=arch)),
        (INIT_FROM, str | None, dataclasses.field(default=None)),
    ]
    for f in dataclasses.fields(config_class):
        if f.default is not dataclasses.MISSING:
            default = dataclasses.field(default=f.default)
        else:
            default = dataclasses.field(default_factory=f.default_factory)
        fields.append((f.name, _omegaconf_type(hints[f.name]), default))
    return dataclasses.make_dataclass(f"{config_class.__name__}Schema", fields)


def register_configs() -> None:
    """Store the run schema, the model schemas and the named model sizes in Hydra's ConfigStore
    (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=RunConfig)
    schemas = {arch: model_schema(config_class, arch) for arch, config_class in ARCHITECTURES.items()}
    for arch, schema in schemas.items():
        store.store(group="model", name=f"{arch}_schema", node=schema)
    for name in named_sizes.names():
        config = named_sizes.get(name)
        arch = arch_of(config)
        store.store(group="model", name=name, node=schemas[arch](arch=arch, **dataclasses.asdict(config)))
