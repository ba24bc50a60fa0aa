"""Data for evaluation: a named data config (configs/data/NAME.yaml) or the run's own, as a datamodule.

A named config is composed with Hydra exactly as ``train.py`` composes it (``configs/train.yaml``
with the override ``data=NAME``), so interpolations and defaults resolve the same way; a run's own
config is the resolved ``data`` section saved with its checkpoint. ``data.KEY=VALUE`` overrides
apply to either.
"""

from __future__ import annotations

from typing import Any

import torch
from hydra import compose, initialize_config_dir
from mamba_lm.data import build_datamodule
from omegaconf import OmegaConf

from mamba_lm.trainer import config_dir
from mamba_lm.trainer.config_store import register_configs

from .text_tokenizer import TextTokenizer

CONFIGS_DIR = config_dir()


def available_data_configs() -> list[str]:
    """Names of the data configs under configs/data/."""
    return sorted(path.stem for path in (CONFIGS_DIR / "data").glob("*.yaml"))


def compose_data_config(name: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``data`` section of the training config composed with ``data=NAME`` (plus overrides), as
    a resolved plain dict. An unknown name raises ``ValueError`` listing the known ones."""
    if name not in available_data_configs():
        known = ", ".join(available_data_configs()) or "nothing"
        raise ValueError(f"unknown data config {name!r}; configs/data/ has: {known}")
    register_configs()  # train.yaml's schemas live in Hydra's ConfigStore
    hydra_overrides = [f"data={name}"] + [f"{key}={value}" for key, value in (overrides or {}).items()]
    with initialize_config_dir(config_dir=str(CONFIGS_DIR), version_base="1.3", job_name="evaluation"):
        config = compose(config_name="train", overrides=hydra_overrides)
    return OmegaConf.to_container(config.data, resolve=True)


def apply_overrides(data_config: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """``data.KEY=VALUE`` overrides merged into a resolved data config (values parsed as YAML)."""
    if not overrides:
        return data_config
    dotlist = [f"{key.removeprefix('data.')}={value}" for key, value in overrides.items()]
    return OmegaConf.to_container(
        OmegaConf.merge(OmegaConf.create(data_config), OmegaConf.from_dotlist(dotlist))
    )


def build_eval_datamodule(
    name: str | None, run_config: dict[str, Any], overrides: dict[str, str]
) -> tuple[str, Any]:
    """(display name, datamodule) of the data to evaluate on: ``data=NAME`` if given, else the run's own.

    Overrides must address the data config (``data.KEY``); others raise ``ValueError``.
    """
    bad = [key for key in overrides if not key.startswith("data.")]
    if bad:
        raise ValueError(f"only data.KEY=VALUE overrides are accepted here, got {bad}")
    if name is not None:
        data_config = compose_data_config(name, overrides)
    elif run_config.get("data"):
        data_config = apply_overrides(dict(run_config["data"]), overrides)
        name = str(data_config.get("name") or data_config.get("kind") or "run_data")
    else:
        raise ValueError(
            "this checkpoint is not a run of train.py, so it has no data config of its own: pass data=NAME "
            f"(one of {', '.join(available_data_configs())})"
        )
    return name, build_datamodule(data_config, seed=int(run_config.get("seed", 0)), rank=0, world_size=1)


def embedding_rows(model: torch.nn.Module) -> int:
    """Rows of the model's (first) token embedding: the largest token id it accepts, plus one."""
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            return module.num_embeddings
    raise ValueError(f"{type(model).__name__} has no token embedding")


def check_tokenizers_match(
    model_tokenizer: TextTokenizer | None, data_tokenizer_file: str | None, data_name: str
) -> None:
    """Raise ``ValueError`` when the data was tokenized with another vocabulary than the model's
    tokenizer (both known); silently pass when either is unknown."""
    if model_tokenizer is None or not data_tokenizer_file:
        return
    data_tokenizer = TextTokenizer.from_file(data_tokenizer_file)
    if data_tokenizer.tokenizer.get_vocab() != model_tokenizer.tokenizer.get_vocab():
        raise ValueError(
            f"data config {data_name!r} is tokenized with {data_tokenizer_file}, whose vocabulary "
            f"differs from the checkpoint's tokenizer ({model_tokenizer.source}): scores would mean nothing"
        )
