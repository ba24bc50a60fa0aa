"""Data: corpora -> tokenizer -> token shards -> resumable batches; synthetic tasks; Long Range Arena.

The entry point is :func:`build_datamodule`; configs live in ``configs/data/*.yaml`` and are
typed by :mod:`data.config`. This package imports neither the models nor the trainer.
"""

from __future__ import annotations

from mamba_lm._short_names import alias_short_name

# Imported as `data` from a checkout's root: `data` becomes mamba_lm.data (mamba_lm/_short_names.py).
alias_short_name(__name__)

from typing import Any

from mamba_lm.data.config import parse_data_config
from mamba_lm.data.datamodule import DataModule
from mamba_lm.data.lm.datamodule import LMDataModule
from mamba_lm.data.lm.prepare import check_vocab_fits
from mamba_lm.data.lm.streaming import StreamingLMDataModule
from mamba_lm.data.lra.datamodule import LRADataModule
from mamba_lm.data.synthetic.datamodule import SyntheticDataModule

__all__ = ["DataModule", "build_datamodule", "check_vocab_fits", "parse_data_config"]


def build_datamodule(data_cfg: Any, seed: int, rank: int = 0, world_size: int = 1) -> DataModule:
    """The data module for a ``data`` config node (DictConfig or dict), building caches as needed.

    ``seed`` fixes the training order (and on-the-fly examples); ``rank``/``world_size`` select
    this data-parallel rank's disjoint share. Bad configs fail here with a message naming the key.
    """
    config = parse_data_config(data_cfg)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, world_size={world_size}), got {rank}")
    if config.kind == "lm":
        if config.dataset.streaming:
            return StreamingLMDataModule(config, seed, rank, world_size)
        return LMDataModule(config, seed, rank, world_size)
    if config.kind in ("selective_copying", "induction_heads"):
        return SyntheticDataModule(config, seed, rank, world_size)
    return LRADataModule(config, seed, rank, world_size)
