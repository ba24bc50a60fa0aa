"""Where the Hydra configs (train.yaml and its groups) are: the checkout's configs/ folder, or the copy an
installed package ships as the data-only package ``mamba_lm_configs`` (setup.py). The trainer's command,
``python -m data`` and evaluation's data configs all ask ``config_dir()``. Imports nothing of the project, so
every layer may use it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGED_CONFIGS = "mamba_lm_configs"
"""The import name under which an installed package ships configs/."""
CHECKOUT_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
"""configs/ beside the mamba_lm folder in a checkout (an editable install runs from there)."""


def config_dir() -> Path:
    """The Hydra config folder: the checkout's configs/, else the installed copy.
    Raises FileNotFoundError when neither holds train.yaml."""
    if (CHECKOUT_CONFIGS / "train.yaml").is_file():
        return CHECKOUT_CONFIGS
    spec = importlib.util.find_spec(PACKAGED_CONFIGS)
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / "train.yaml").is_file():
            return Path(location)
    raise FileNotFoundError(
        f"no Hydra configs found: neither {CHECKOUT_CONFIGS} nor an installed {PACKAGED_CONFIGS} package "
        "holds train.yaml"
    )
