"""Load a language model from any folder this project reads, and save one: ``from_pretrained`` /
``save_pretrained`` (also methods of the model classes, as in the reference package, mamba_ssm).
A Hugging Face Hub repository id (``owner/name``) that is not a local path is downloaded first
(``local_folder``), e.g. ``from_pretrained("state-spaces/mamba-130m")``.

``from_pretrained(path)`` reads, by what the folder holds:

1. a run folder of ``train.py`` (its newest valid checkpoint) or one of its checkpoint folders;
2. a transformers folder: ``config.json`` with ``model_type`` "mamba" or "llama" (MambaForCausalLM,
   LlamaForCausalLM), weights in ``model.safetensors`` / ``pytorch_model.bin``, possibly sharded;
3. a reference-package folder: ``config.json`` with ``d_model`` / ``n_layer`` (mamba_ssm's fields) and
   weights in its key layout (``pytorch_model.bin`` or ``model.safetensors``);
4. a folder written by ``save_pretrained``: ``config.json`` = ``{"arch": ..., **model config fields}``
   and ``model.safetensors``.

Weights are read with safetensors, or ``torch.load(weights_only=True)``: never by unpickling code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import MambaConfig
from .files import atomic_write_json, atomic_write_with
from .models.lm import LMHeadModel
from .models.mamba_lm import MambaLMHeadModel
from .trainer import build_model_from_dict, holds_training_output, load_model, model_config_to_dict

CONFIG_JSON = "config.json"
HF_MODEL_TYPES = ("mamba", "llama")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
FORMATS = ("run", "hf", "mamba_ssm", "saved")


HUB_FILES = ["*.json", "*.safetensors", "*.bin", "*.txt", "*.model"]
"""What a Hub download fetches: configs, weights, tokenizer files."""
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def local_folder(path: str | Path) -> Path:
    """``path`` itself, or, for a Hub repository id ``owner/name`` that is no local path, the folder
    ``huggingface_hub.snapshot_download`` puts its configs, weights and tokenizer files in (its cache)."""
    if Path(path).exists() or not HUB_ID.fullmatch(str(path)):
        return Path(path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=str(path), allow_patterns=HUB_FILES))
    except Exception as error:  # offline, no such repository, no access: huggingface_hub's many types
        raise FileNotFoundError(
            f"no model at {path}: not a local path, and no Hugging Face Hub repository of that id could be "
            f"fetched ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from error


def folder_format(path: str | Path) -> str:
    """What ``path`` holds: "run" (a run or checkpoint folder of train.py), "hf" (transformers),
    "mamba_ssm" (the reference package's layout) or "saved" (``save_pretrained``).

    Raises FileNotFoundError for a path that does not exist, ValueError for a folder none of these.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}: the path does not exist")
    if holds_training_output(path):
        if not (path / CONFIG_JSON).is_file() or "model" in _read_config(path):
            return "run"
    if (path / CONFIG_JSON).is_file():
        config = _read_config(path)
        if "model_type" in config or "architectures" in config:
            return "hf"
        if "arch" in config:
            return "saved"
        if {"d_model", "n_layer"} <= set(config):
            return "mamba_ssm"
        raise ValueError(
            f"{path / CONFIG_JSON} is neither a transformers config (model_type), a mamba_ssm config "
            "(d_model, n_layer) nor one written by save_pretrained (arch)"
        )
    raise ValueError(
        f"{path} is neither a run folder (with checkpoints/) nor a checkpoint folder (with manifest.json) "
        f"nor a model folder with {CONFIG_JSON} and weights (transformers, mamba_ssm or save_pretrained)"
    )


def from_pretrained(
    path: str | Path,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """The model stored at ``path`` (see the module docstring), in eval mode.

    Args:
        device: where to put it (None: the CPU).
        dtype: the weights' dtype (None: float32, the dtype training keeps its weights in).
    Returns a ``MambaLMHeadModel`` (Mamba or S4D) or ``TransformerLMHeadModel`` (a run folder of an LRA
    experiment gives its ``SequenceClassifier``).
    """
    path = local_folder(path)
    kind = folder_format(path)
    if kind == "run":
        model, _ = load_model(path)
    elif kind == "hf":
        model = _from_hf_folder(path, _read_config(path))
    else:
        model = _from_config_and_weights(path, _read_config(path), kind)
    return model.to(device=device or "cpu", dtype=dtype or torch.float32).eval()


def save_pretrained(model: nn.Module, save_directory: str | Path) -> Path:
    """Write ``config.json`` (``{"arch": ..., **config fields}``) and ``model.safetensors`` (fp32 unless
    the model is in another dtype; a tied LM head stored once) into ``save_directory``; returns it."""
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    config = model_config_to_dict(model.config)
    state_dict = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if getattr(model.config, "tie_embeddings", False):
        state_dict.pop("lm_head.weight", None)  # the embedding's own matrix
    metadata = {"format": "pt"}
    atomic_write_with(folder / WEIGHT_FILES[0], lambda tmp: save_file(state_dict, str(tmp), metadata))
    atomic_write_json(folder / CONFIG_JSON, config)
    return folder


INIT_ONLY_FIELDS = frozenset(
    {
        "dt_min",
        "dt_max",
        "dt_init",
        "dt_scale",
        "dt_init_floor",
        "initializer_range",
        "rescale_prenorm_residual",
    }
)
"""Config fields that only shape the random initialization: they may differ between a run and the weights
it starts from."""


def load_pretrained_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Copy the weights stored at ``path`` (any folder ``from_pretrained`` reads) into ``model``, in place
    (the training key ``model.init_from=PATH``: continued pretraining, fine-tuning).

    The stored model must be the same class with the same config, up to init-only fields and the
    vocabulary (which must pad to the same embedding size); otherwise ValueError names the differences.
    Returns ``model``.
    """
    source = from_pretrained(path)
    where = f"model.init_from={path}"
    if type(source) is not type(model):
        raise ValueError(f"{where} holds a {type(source).__name__}; this run builds a {type(model).__name__}")
    ours, theirs = model.config.to_dict(), source.config.to_dict()
    compared = set(ours) - INIT_ONLY_FIELDS - {"vocab_size", "pad_vocab_size_multiple"}
    differences = [
        f"{key}: this run {ours[key]!r}, stored {theirs.get(key)!r}"
        for key in sorted(compared)
        if ours[key] != theirs.get(key)
    ]
    shapes = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    stored = {name: tuple(p.shape) for name, p in source.state_dict().items()}
    differences += [
        f"{name}: this run {shapes.get(name)}, stored {stored.get(name)}"
        for name in sorted(set(shapes) | set(stored))
        if shapes.get(name) != stored.get(name)
    ][:4]
    if differences:
        raise ValueError(
            f"{where} does not fit this run's model ({'; '.join(differences)}); choose the model config "
            "that matches the stored one (model=... or model.<field>=...)"
        )
    with torch.no_grad():
        model.load_state_dict(source.state_dict())
    return model


def read_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """The weights in ``folder``: model.safetensors / pytorch_model.bin, or the shards an index lists.
    ``.bin`` files load with ``torch.load(weights_only=True)`` (plain tensors only, no code)."""
    folder = Path(folder)
    for index_name in INDEX_FILES:
        index_file = folder / index_name
        if index_file.is_file():
            shards = sorted(set(json.loads(index_file.read_text(encoding="utf-8"))["weight_map"].values()))
            state_dict: dict[str, torch.Tensor] = {}
            for shard in shards:
                state_dict.update(_read_weight_file(folder / shard))
            return state_dict
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return _read_weight_file(folder / name)
    raise FileNotFoundError(f"{folder} has a config.json but no weights ({' or '.join(WEIGHT_FILES)})")


def _read_weight_file(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise FileNotFoundError(f"weight file {file} is missing")
    if file.suffix == ".safetensors":
        try:
            return load_file(str(file))
        except SafetensorError as error:
            raise ValueError(f"{file} is not a readable safetensors file ({error})") from error
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors: objects other than tensors, or a damaged file
        raise ValueError(f"{file} could not be read as plain tensors (weights_only=True): {error}") from error
    if not isinstance(loaded, dict):
        raise ValueError(f"{file} holds a {type(loaded).__name__}, expected a state_dict")
    return loaded


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / CONFIG_JSON).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path / CONFIG_JSON} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path / CONFIG_JSON} holds a {type(config).__name__}, expected a JSON object")
    return config


def _from_hf_folder(path: Path, config: dict[str, Any]) -> LMHeadModel:
    from transformers import AutoConfig

    from .hf import from_hf

    if config.get("model_type") not in HF_MODEL_TYPES:
        found = config.get("model_type") or config.get("architectures")
        raise ValueError(
            f"{path} holds a Hugging Face {found!r} model; only {', '.join(HF_MODEL_TYPES)} "
            "(MambaForCausalLM, LlamaForCausalLM) convert to this project's models"
        )
    state_dict = read_state_dict(path)
    hf_config = AutoConfig.for_model(**config)
    return from_hf(hf_config, {name: tensor.float() for name, tensor in state_dict.items()})


def _from_config_and_weights(path: Path, config: dict[str, Any], kind: str) -> nn.Module:
    """A mamba_ssm folder (a MambaConfig in the reference's fields) or a save_pretrained folder."""
    try:
        model = (
            build_model_from_dict(config)
            if kind == "saved"
            else MambaLMHeadModel(MambaConfig.from_dict(config))
        )
    except (TypeError, ValueError) as error:
        what = "a model config this project builds" if kind == "saved" else "a Mamba (mamba_ssm) config"
        raise ValueError(f"{path / CONFIG_JSON} is not {what}: {error}") from error
    state_dict = read_state_dict(path)
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as error:  # a shape differs
        raise ValueError(
            f"{path}: the weights do not fit the {type(model).__name__} its config.json describes: {error}"
        ) from error
    tied = getattr(model.config, "tie_embeddings", False)
    missing = [key for key in missing if not (tied and key == "lm_head.weight")]  # the embedding's matrix
    if missing or unexpected:
        raise ValueError(
            f"{path}: the weights do not match the {type(model).__name__} its config.json describes "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model


__all__ = [
    "FORMATS",
    "folder_format",
    "from_pretrained",
    "local_folder",
    "load_pretrained_weights",
    "read_state_dict",
    "save_pretrained",
]
