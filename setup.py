"""Which folders are installed under which import names (the metadata lives in pyproject.toml).

The repository's top-level ``kernels/``, ``data/`` and ``evaluation/`` are installed inside ``mamba_lm``
(``mamba_lm.kernels``, ...): installed top-level packages with those names would collide with Hugging Face's
``kernels`` package and with a user's own ``data/`` or ``evaluation/`` (mamba_lm/_short_names.py).

``configs/`` is shipped as the data-only package ``mamba_lm_configs``, so that an installed (not only an
editable) ``mamba-lm-train`` finds its Hydra configs (``mamba_lm.trainer.app.config_dir``).
"""

from setuptools import find_namespace_packages, find_packages, setup

PACKAGE_FOLDERS = {
    "mamba_lm": "mamba_lm",
    "mamba_lm.kernels": "kernels",
    "mamba_lm.data": "data",
    "mamba_lm.evaluation": "evaluation",
}
CONFIG_PACKAGE, CONFIG_FOLDER = "mamba_lm_configs", "configs"


def package_names() -> list[str]:
    """Every package and subpackage under its import name (configs: every folder, no __init__.py)."""
    names = []
    for name, folder in PACKAGE_FOLDERS.items():
        names += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]
    names += [CONFIG_PACKAGE] + [f"{CONFIG_PACKAGE}.{sub}" for sub in find_namespace_packages(CONFIG_FOLDER)]
    return names


setup(
    packages=package_names(),
    package_dir={**PACKAGE_FOLDERS, CONFIG_PACKAGE: CONFIG_FOLDER},
)
