"""Mamba, S4D and Transformer++ models: mixers, language models, the LRA classifier, generation, HF interop.

Imports only torch and this project's ``mamba_lm.kernels`` (no Hydra, datasets or wandb), so it runs on the
GPU machine as is.

``mamba_lm.from_pretrained(path)`` loads a run, checkpoint, transformers or reference-package folder
(``mamba_lm.pretrained``, which reads the run-folder layout of ``mamba_lm.trainer``); it, ``mamba_lm.hf``
(transformers) and the trainer are imported on first use.

Import names: the repository's top-level folders ``kernels/``, ``data/`` and ``evaluation/`` are this
package's subpackages ``mamba_lm.kernels``, ``mamba_lm.data`` and ``mamba_lm.evaluation`` (setup.py installs
them there), so a Hugging Face ``kernels`` package or a user's own ``data/`` or ``evaluation/`` cannot
shadow them. In a source checkout that is not installed they sit beside this folder, and ``__path__`` below
finds them there. From a checkout's root the short names still work (``from kernels import
selective_scan_fn``, ``python -m evaluation``) and give the same modules (``mamba_lm._short_names``).
"""

from ._short_names import checkout_root

_checkout = checkout_root(__file__)
if _checkout is not None:  # not installed: kernels/, data/, evaluation/ are siblings
    __path__.append(str(_checkout))

from .build import build_model
from .config import ClassifierConfig, MambaConfig, TransformerConfig
from .generation import InferenceParams
from .models import CausalLMOutput, MambaLMHeadModel, TransformerLMHeadModel
from .models.classifier import SequenceClassifier
from .modules import S4D, CausalSelfAttention, Mamba, MambaS4D

_ON_FIRST_USE = {"from_pretrained": "pretrained", "save_pretrained": "pretrained"}


def __getattr__(name: str):
    """``from_pretrained`` / ``save_pretrained``: their module is imported when first asked for."""
    if name in _ON_FIRST_USE:
        import importlib

        return getattr(importlib.import_module(f".{_ON_FIRST_USE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "S4D",
    "CausalLMOutput",
    "CausalSelfAttention",
    "ClassifierConfig",
    "InferenceParams",
    "Mamba",
    "MambaConfig",
    "MambaLMHeadModel",
    "MambaS4D",
    "SequenceClassifier",
    "TransformerConfig",
    "TransformerLMHeadModel",
    "build_model",
    "from_pretrained",
    "save_pretrained",
]
