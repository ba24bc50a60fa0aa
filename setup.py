"""Which folders are installed under which import names (the metadata lives in pyproject.toml).

``configs/`` is shipped as the data-only package ``mamba_lm_configs``, so that an installed (not only an
editable) ``mamba-lm-train`` finds its Hydra configs (``mamba_lm.trainer.app.config_dir``).
"""

from setuptools import find_namespace_packages, find_packages, setup

PACKAGE_FOLDERS = {
    "mamba_lm": "mamba_lm",
    "kernels": "kernels",
    "data": "data",
    "evaluation": "evaluation",
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
