"""The repository's top-level folders as subpackages of ``mamba_lm``, and their short names in a checkout.

``kernels/``, ``data/`` and ``evaluation/`` are installed as ``mamba_lm.kernels``, ``mamba_lm.data`` and
``mamba_lm.evaluation`` (setup.py), and every import in the project uses those names, so neither Hugging
Face's ``kernels`` package nor a user's own ``data/`` or ``evaluation/`` can shadow them. Two helpers:

- ``checkout_root``: in a source checkout that is not installed, the three folders sit beside
  ``mamba_lm/``; ``mamba_lm/__init__.py`` then adds that folder to its ``__path__`` so the long names
  resolve there too.
- ``alias_short_name``: from a checkout's root, ``import kernels`` (``from kernels import
  selective_scan_fn``) or ``python -m evaluation`` loads a folder under its short name. Its ``__init__``
  calls this, which makes ``kernels`` and every ``kernels.*`` the same module objects as
  ``mamba_lm.kernels`` and ``mamba_lm.kernels.*``: one copy of each module (one lm-eval registration,
  one set of exception classes, one compile of each Triton kernel).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SUBPACKAGES = ("kernels", "data", "evaluation")


def checkout_root(init_file: str) -> Path | None:
    """The checkout folder holding ``mamba_lm/`` beside ``kernels/``, ``data/`` and ``evaluation/``, or
    None when ``mamba_lm`` is installed (its subpackages then lie inside it)."""
    package = Path(init_file).resolve().parent
    if (package / "kernels").is_dir():
        return None
    root = package.parent
    if all((root / name / "__init__.py").is_file() for name in SUBPACKAGES):
        return root
    return None


class _LongNameLoader(importlib.abc.Loader):
    """Loads ``kernels.x`` by importing ``mamba_lm.kernels.x`` and returning that module."""

    def __init__(self, long_name: str):
        self.long_name = long_name

    def create_module(self, spec):
        return importlib.import_module(self.long_name)

    def exec_module(self, module):
        pass  # already executed under its long name

    def get_code(self, fullname):
        """``python -m evaluation.harness_cli``: runpy runs the long-name module's code as __main__."""
        return importlib.util.find_spec(self.long_name).loader.get_code(self.long_name)


class _ShortNameFinder(importlib.abc.MetaPathFinder):
    """Resolves ``kernels.*``, ``data.*`` and ``evaluation.*`` to the ``mamba_lm.*`` modules, once the short
    package itself has been aliased (so a user's own ``data`` package is never touched)."""

    def find_spec(self, fullname, path=None, target=None):
        short = fullname.partition(".")[0]
        if short not in SUBPACKAGES or "." not in fullname or fullname.endswith(".__main__"):
            return None  # python -m evaluation: runpy loads evaluation/__main__.py itself, as __main__
        if sys.modules.get(short) is not sys.modules.get(f"mamba_lm.{short}"):
            return None
        return importlib.machinery.ModuleSpec(fullname, _LongNameLoader(f"mamba_lm.{fullname}"))


def alias_short_name(module_name: str) -> ModuleType | None:
    """Called by each subpackage's ``__init__`` with its ``__name__``: under the short name, import the
    ``mamba_lm.*`` module, make the short name (and its submodules) point at it, and return it; under the
    long name, do nothing and return None."""
    if module_name not in SUBPACKAGES:
        return None
    module = importlib.import_module(f"mamba_lm.{module_name}")
    sys.modules[module_name] = module
    if not any(isinstance(finder, _ShortNameFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ShortNameFinder())
    return module
