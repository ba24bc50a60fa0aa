"""Find and load a model to evaluate, with its tokenizer, from any of the checkpoint formats we read.

``load_for_eval(path)`` accepts what ``mamba_lm.from_pretrained`` reads (``mamba_lm.pretrained``):

1. a run folder of ``train.py`` or one of its checkpoint folders (``mamba_lm.trainer.load_checkpoint``);
   the tokenizer is the run's copy of ``tokenizer.json`` (``mamba_lm.trainer.RunFolder``);
2. a Hugging Face folder (``config.json`` with ``model_type`` "mamba" or "llama", weights in
   ``model.safetensors`` / ``pytorch_model.bin``, possibly sharded), converted with ``mamba_lm.hf.from_hf``;
3. a reference ``mamba_ssm`` folder (``config.json`` with ``d_model``/``n_layer``, weights in its key
   layout), loaded into ``MambaLMHeadModel`` unchanged;
4. a folder written by ``save_pretrained``.

Weights are read with safetensors, or ``torch.load(weights_only=True)``: never by unpickling code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mamba_lm import SequenceClassifier
from mamba_lm.pretrained import folder_format, from_pretrained, local_folder
from mamba_lm.trainer import find_run_folder, load_checkpoint

from .text_tokenizer import TextTokenizer


@dataclass
class LoadedModel:
    model: torch.nn.Module
    """In eval mode, on the requested device, fp32 weights."""
    tokenizer: TextTokenizer | None
    """None only when ``require_tokenizer=False`` and none was found (classifiers, synthetic tasks)."""
    kind: str
    """"run" (train.py), "hf", "mamba_ssm" or "saved" (save_pretrained): which format it came from."""
    source: Path
    run_config: dict[str, Any] = field(default_factory=dict)
    """The resolved training config for runs of train.py; {} otherwise."""
    seqlen: int | None = None
    """The training sequence length when known (the default max_length for lm-eval)."""
    step: int | None = None
    """For runs of train.py: the optimizer steps done when the checkpoint was saved."""
    checkpoint: Path | None = None
    """For runs of train.py: the checkpoint folder the weights came from."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto" = the first CUDA GPU when there is one, else the CPU; a CUDA device on a machine
    without one raises ``ValueError``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device} was asked for but CUDA is not available here; use device=cpu")
    return device


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The autocast compute dtype from a name: float32/fp32, bfloat16/bf16, float16/fp16, or auto
    (bfloat16 on a GPU that supports it, else float32)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = (dtype or "auto").lower()
    if name == "auto":
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_ok else torch.float32
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
    }
    if name not in names:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of auto, {', '.join(names)}")
    return names[name]


def load_for_eval(
    path: str | Path,
    device: str | torch.device | None = "cpu",
    tokenizer: str | Path | TextTokenizer | None = None,
    eos_token: str | None = None,
    require_tokenizer: bool = True,
    expect: str = "lm",
) -> LoadedModel:
    """Load the model at ``path`` (see the module docstring) with its tokenizer.

    Args:
        tokenizer: overrides the checkpoint's tokenizer (a tokenizer.json path or a loaded one).
        require_tokenizer: raise ``FileNotFoundError`` naming the folder when no tokenizer is found.
        expect: "lm" (a causal LM: its output has per-token logits) or "classifier" (a sequence
            classifier); a checkpoint of the other type raises ``ValueError`` naming both.
    """
    path = local_folder(path)  # a Hub id owner/name is downloaded
    kind = folder_format(path)
    loaded = _load_run(path) if kind == "run" else LoadedModel(from_pretrained(path), None, kind, path)
    _check_model_type(loaded, expect)
    loaded.model = loaded.model.to(resolve_device(device)).eval()
    if isinstance(tokenizer, TextTokenizer):
        loaded.tokenizer = tokenizer
    elif tokenizer is not None:
        loaded.tokenizer = TextTokenizer.from_file(tokenizer, eos_token)
    else:
        found = _find_tokenizer_file(path)
        loaded.tokenizer = TextTokenizer.from_file(found, eos_token) if found else None
    if loaded.tokenizer is None and require_tokenizer:
        raise FileNotFoundError(
            f"no tokenizer.json found for checkpoint {path} (looked in it and its parent folders); "
            "runs of train.py copy it into the run folder; otherwise pass tokenizer=PATH/TO/tokenizer.json"
            + (
                " (the reference Mamba checkpoints use EleutherAI/gpt-neox-20b's)"
                if loaded.kind == "mamba_ssm"
                else ""
            )
        )
    return loaded


def _load_run(path: Path) -> LoadedModel:
    loaded = load_checkpoint(path, device="cpu")
    data = loaded.run_config.get("data") or {}
    seqlen = data.get("seqlen") if isinstance(data, dict) else None
    seqlen = int(seqlen) if seqlen else None
    return LoadedModel(loaded.model, None, "run", path, loaded.run_config, seqlen, loaded.step, loaded.folder)


def _find_tokenizer_file(path: Path) -> Path | None:
    """tokenizer.json in the model folder itself, else the copy in the run folder it belongs to."""
    folder = path if path.is_dir() else path.parent
    if (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    run_folder = find_run_folder(folder)
    if run_folder is not None and run_folder.tokenizer_file.is_file():
        return run_folder.tokenizer_file
    return None


def _check_model_type(loaded: LoadedModel, expect: str) -> None:
    is_classifier = isinstance(loaded.model, SequenceClassifier)
    if expect == "lm" and is_classifier:
        raise ValueError(
            f"{loaded.source} holds a sequence classifier ({type(loaded.model).__name__}); "
            "this command needs a causal language model"
        )
    if expect == "classifier" and not is_classifier:
        raise ValueError(
            f"{loaded.source} holds a {type(loaded.model).__name__}, not a sequence classifier; "
            "LRA evaluation needs a run trained with an lra experiment"
        )
