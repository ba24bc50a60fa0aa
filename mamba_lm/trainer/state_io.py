"""File formats of a checkpoint: safetensors and JSON only, checked by a manifest.

The folder is written atomically as a whole (``mamba_lm.files.atomic_directory``).

Nothing here unpickles: tensors go through ``safetensors``, everything else through ``json``.
Tied parameters (an embedding shared with the LM head) are stored once; the other names are
recorded as aliases in the safetensors metadata and restored on load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..files import atomic_write_json

MANIFEST = "manifest.json"
FORMAT = "mamba_lm.checkpoint"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, damaged, or does not fit the model or run."""


def tied_parameter_aliases(model: torch.nn.Module) -> dict[str, str]:
    """{alias name: first name} for parameters registered under several names (tied weights)."""
    first_name: dict[int, str] = {}
    aliases = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in first_name:
            aliases[name] = first_name[id(param)]
        else:
            first_name[id(param)] = name
    return aliases


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], aliases: dict[str, str] | None = None) -> None:
    """Save a flat dict of tensors as safetensors, storing each alias (tied weight) only once."""
    aliases = aliases or {}
    kept = {name: t.detach().contiguous() for name, t in tensors.items() if name not in aliases}
    missing = [target for target in aliases.values() if target not in kept]
    if missing:
        raise ValueError(f"aliased tensors {missing} are not in the state dict being saved")
    present = {alias: target for alias, target in aliases.items() if alias in tensors}
    save_file(kept, str(path), metadata={"aliases": json.dumps(present)})


def load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load what ``save_tensors`` wrote; alias names point at the same tensor as their target.

    Raises CheckpointError naming the file when it is not a readable safetensors file.
    """
    try:
        tensors = load_file(str(path), device=str(device))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        aliases = json.loads(metadata.get("aliases", "{}"))
        for alias, target in aliases.items():
            tensors[alias] = tensors[target]
    except (SafetensorError, OSError, ValueError, KeyError, AttributeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is not a readable safetensors file ({reason})") from error
    return tensors


def read_json(path: Path) -> Any:
    """A JSON file of a checkpoint; CheckpointError names the file when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable JSON file ({error})") from error


def flatten_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and the rest (for JSON).

    Tensor ``state[param][key]`` becomes ``"state/{param}/{key}"``; non-tensor values and
    ``param_groups`` go to the JSON part.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{param}/{key}"] = value
            else:
                scalars.setdefault(str(param), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalar_state": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``flatten_optimizer_state``."""
    state: dict[str, dict[str, Any]] = {}
    for flat_key, value in tensors.items():
        _, rest = flat_key.split("/", 1)
        param, key = rest.rsplit("/", 1)
        state.setdefault(param, {})[key] = value
    for param, entries in meta["scalar_state"].items():
        state.setdefault(param, {}).update(entries)
    groups = [dict(group) for group in meta["param_groups"]]
    for group in groups:
        if "betas" in group:  # JSON turns the tuple into a list
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def sha256_of(path: Path, chunk_bytes: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, step: int) -> None:
    """Record each file's size and SHA-256 in ``manifest.json``; written last, it marks a complete folder."""
    files = {
        file.name: {"bytes": file.stat().st_size, "sha256": sha256_of(file)}
        for file in sorted(folder.iterdir())
        if file.name != MANIFEST
    }
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "step": step, "files": files}
    atomic_write_json(folder / MANIFEST, manifest)


def manifest_problem(folder: Path, verify_hashes: bool = True, required: Iterable[str] = ()) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None when it is.

    Checks that ``manifest.json`` exists and parses, that it lists at least one file and every name
    in ``required``, and that every listed file is present with the recorded size (and, with
    ``verify_hashes``, the recorded SHA-256).
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return f"no {MANIFEST} (an interrupted write, or not a checkpoint folder)"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        entries = files.values()
        if not all(isinstance(entry, dict) and {"bytes", "sha256"} <= entry.keys() for entry in entries):
            raise TypeError("an entry of 'files' lacks 'bytes' or 'sha256'")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        return f"unreadable {MANIFEST}: {error}"
    if manifest.get("format") != FORMAT:
        return f"{MANIFEST} is not a {FORMAT} manifest"
    if not files:
        return f"{MANIFEST} lists no files"
    unlisted = [name for name in required if name not in files]
    if unlisted:
        return f"{MANIFEST} does not list {', '.join(unlisted)}"
    for name, expected in files.items():
        file = folder / name
        if not file.is_file():
            return f"file {name} is missing"
        if file.stat().st_size != expected["bytes"]:
            return f"file {name} has {file.stat().st_size} bytes, the manifest says {expected['bytes']}"
        if verify_hashes and sha256_of(file) != expected["sha256"]:
            return f"file {name} does not match its SHA-256 in the manifest (damaged)"
    return None
