"""Checkpoints: save, find, resume, and load a trained model for evaluation.

Where checkpoints lie and what files one holds: ``run_folder.py``. A checkpoint is written into a
dot-named temporary folder and renamed into place when complete (``mamba_lm.files.atomic_directory``),
so a ``step_*`` folder is never half-written; ``manifest.json`` also catches later damage (a missing,
truncated or altered file). Loading reads safetensors and JSON only: no pickled code runs.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from ..files import atomic_directory, atomic_write_json
from .model_factory import build_model_from_dict
from .run_folder import (
    CHECKPOINT_CONFIG,
    CHECKPOINTS,
    LEGACY_CHECKPOINT_CONFIG,
    MANIFEST,
    MODEL_FILE,
    OPTIMIZER_FILE,
    OPTIMIZER_META,
    TRAINER_STATE,
    RunFolder,
    step_of,
)
from .state_io import (
    CheckpointError,
    flatten_optimizer_state,
    load_tensors,
    manifest_problem,
    read_json,
    save_tensors,
    unflatten_optimizer_state,
    write_manifest,
)

CONFIG_FILE, LEGACY_CONFIG_FILE = CHECKPOINT_CONFIG, LEGACY_CHECKPOINT_CONFIG  # older names of these two
REQUIRED_FILES = (MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_META, TRAINER_STATE)  # listed in a valid manifest


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return RunFolder(run_dir).checkpoint_dir(step)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The run's ``step_*`` checkpoint folders, newest (highest step) first; valid or not."""
    return RunFolder(run_dir).step_folders()


def checkpoint_problem(folder: Path, verify_hashes: bool = True) -> str | None:
    """Why ``folder`` is not a valid checkpoint, or None when it is: its manifest must check out and
    list the weights and the training state (a manifest listing no files, or no weights, is invalid)."""
    return manifest_problem(Path(folder), verify_hashes, required=REQUIRED_FILES)


def _newest_valid(run_dir: Path, verify_hashes: bool) -> tuple[Path | None, dict[Path, str]]:
    """The newest valid checkpoint (or None), and {newer step folder: why it is not valid}."""
    skipped: dict[Path, str] = {}
    for candidate in list_checkpoints(run_dir):
        problem = checkpoint_problem(candidate, verify_hashes)
        if problem is None:
            return candidate, skipped
        skipped[candidate] = problem
    return None, skipped


def find_latest_checkpoint(run_dir: Path, verify_hashes: bool = True) -> Path | None:
    """The newest complete, undamaged checkpoint of a run folder; damaged ones are skipped with a warning."""
    latest, skipped = _newest_valid(run_dir, verify_hashes)
    for candidate, problem in skipped.items():
        warnings.warn(f"skipping damaged checkpoint {candidate}: {problem}", stacklevel=2)
    return latest


def find_checkpoint_to_resume(run_dir: Path) -> Path | None:
    """``resume=auto``: the newest valid checkpoint of ``run_dir``, or None when it has no ``step_*`` folder.

    Raises CheckpointError, before anything in the folder is touched, when it has ``step_*`` folders but
    none is a valid checkpoint: starting again from step 0 would overwrite that run's metrics and
    checkpoints. Newer damaged folders are skipped with a warning when a valid one is found.
    """
    latest, skipped = _newest_valid(run_dir, verify_hashes=True)
    if latest is None and skipped:
        listed = "; ".join(f"{folder.name}: {problem}" for folder, problem in skipped.items())
        raise CheckpointError(
            f"resume=auto found no valid checkpoint in {Path(run_dir) / CHECKPOINTS} ({listed}); the "
            "run folder is untouched. Resume from a checkpoint you trust with resume=PATH, "
            "or start over deliberately in a new run folder (hydra.run.dir=...) or after moving those "
            "folders and metrics.jsonl away"
        )
    for candidate, problem in skipped.items():
        warnings.warn(f"skipping damaged checkpoint {candidate}: {problem}", stacklevel=2)
    return latest


def resolve_checkpoint(path: str | Path, verify_hashes: bool = True) -> Path:
    """A valid checkpoint folder from a run folder (its newest valid checkpoint) or a checkpoint folder.

    Raises FileNotFoundError for a path that does not exist or a run folder without checkpoints,
    and CheckpointError for a damaged checkpoint folder or a folder that is neither kind.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path {path} does not exist")
    if (path / CHECKPOINTS).is_dir():
        latest = find_latest_checkpoint(path, verify_hashes)
        if latest is None:
            raise FileNotFoundError(f"run folder {path} has no valid checkpoint in {path / CHECKPOINTS}")
        return latest
    if (path / MANIFEST).exists() or (path / MODEL_FILE).exists():
        problem = checkpoint_problem(path, verify_hashes)
        if problem is not None:
            raise CheckpointError(f"checkpoint {path} is damaged or incomplete: {problem}")
        return path
    raise CheckpointError(
        f"{path} is neither a run folder (with {CHECKPOINTS}/) nor a checkpoint folder (with {MANIFEST})"
    )


def _full_state_options(strict: bool = True) -> StateDictOptions:
    return StateDictOptions(full_state_dict=True, cpu_offload=True, strict=strict)


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    rank_state: dict[str, Any],
    run_config: dict[str, Any],
    accelerator,
    tied_aliases: dict[str, str],
) -> Path:
    """Write checkpoint ``step`` atomically; every process must call it (states are gathered).

    ``model``/``optimizer`` may be wrapped (DDP, FSDP): their full state is gathered to CPU.
    ``trainer_state`` is shared; ``rank_state`` (data loader and RNG) is this process's and is
    stored per process. Process 0 writes the files. Returns the checkpoint folder.
    """
    from accelerate.utils import gather_object

    model_state = get_model_state_dict(model, options=_full_state_options())
    optim_state = get_optimizer_state_dict(model, optimizer, options=_full_state_options())
    rank_states = gather_object([rank_state])
    final = checkpoint_dir(run_dir, step)
    if accelerator.is_main_process:
        with atomic_directory(final, replaceable=_is_damaged) as tmp:
            save_tensors(tmp / MODEL_FILE, model_state, tied_aliases)
            optim_tensors, optim_meta = flatten_optimizer_state(optim_state)
            save_tensors(tmp / OPTIMIZER_FILE, optim_tensors)
            atomic_write_json(tmp / OPTIMIZER_META, optim_meta)
            state = dict(trainer_state, step=step, world_size=accelerator.num_processes, ranks=rank_states)
            atomic_write_json(tmp / TRAINER_STATE, state)
            atomic_write_json(tmp / CONFIG_FILE, run_config)
            write_manifest(tmp, step)
    accelerator.wait_for_everyone()
    return final


def _is_damaged(folder: Path) -> bool:
    """A ``step_*`` folder that a new checkpoint of its step may replace: not a valid checkpoint."""
    return checkpoint_problem(folder, verify_hashes=True) is not None


def newer_valid_checkpoints(run_dir: Path, step: int) -> list[Path]:
    """Valid checkpoints of ``run_dir`` numbered above ``step`` (sizes checked, not hashes), newest first."""
    return [
        folder
        for folder in list_checkpoints(run_dir)
        if step_of(folder) > step and checkpoint_problem(folder, verify_hashes=False) is None
    ]


def prune_checkpoints(run_dir: Path, keep_last: int, saved_step: int, keep_step: int | None = None) -> None:
    """After saving checkpoint ``saved_step``: keep the ``keep_last`` newest valid checkpoints up to it
    and checkpoint ``keep_step`` (the best validation's, ``trainer.keep_best``), delete the older valid
    ones, and delete the temporary folders of abandoned writes.

    Only valid checkpoints count and are deleted (checked by manifest and file sizes; hashes would
    take too long at every save). Any other ``step_*`` folder (junk, a damaged checkpoint, a user's
    folder) and any folder numbered above ``saved_step`` (none of this run's history: resume
    skipped it as damaged, or the run resumed from an older checkpoint) is left in place with a warning.
    """
    valid = []
    for folder in list_checkpoints(run_dir):
        problem = checkpoint_problem(folder, verify_hashes=False)
        if problem is None and step_of(folder) <= saved_step:
            valid.append(folder)
            continue
        why = problem or f"numbered above the step just saved, {saved_step}"
        warnings.warn(f"left {folder} in place ({why}): it does not count toward keep_last", stacklevel=2)
    for old in valid[keep_last:]:
        if step_of(old) != keep_step:
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(run_dir) / CHECKPOINTS
    abandoned = list(folder.glob(".step_*.tmp")) + list(folder.glob(".tmp-step_*"))  # and the older naming
    for tmp in abandoned:
        shutil.rmtree(tmp, ignore_errors=True)


def best_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint of the best validation so far (``trainer.keep_best``), as the newest valid checkpoint's
    trainer state records it; None when the run keeps none or that folder is gone."""
    newest, _ = _newest_valid(Path(run_dir), verify_hashes=False)
    if newest is None:
        return None
    step = read_json(newest / TRAINER_STATE).get("best_step")
    if step is None:
        return None
    folder = RunFolder(run_dir).checkpoint_dir(int(step))
    return folder if checkpoint_problem(folder, verify_hashes=False) is None else None


def load_training_state(
    checkpoint: Path, model: nn.Module, optimizer: torch.optim.Optimizer, accelerator
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load weights and optimizer state into the (possibly wrapped) model and optimizer.

    Returns (trainer_state, this process's rank_state). A checkpoint of N processes resumes on M when
    all N saved one data position (the samplers' global position, identical on every rank): each
    process continues from it, with the RNG state of saved process ``index mod N``; keep the global
    batch (micro_batch_size x grad_accum_steps x processes) to continue the same run. Raises
    CheckpointError if the checkpoint holds another model, or its processes' data positions differ
    and this run has another number of processes.
    """
    trainer_state = read_json(checkpoint / TRAINER_STATE)
    saved, ranks = trainer_state["world_size"], trainer_state["ranks"]
    if saved != accelerator.num_processes and any(rank["data"] != ranks[0]["data"] for rank in ranks):
        raise CheckpointError(
            f"checkpoint {checkpoint} was written by {saved} processes with a data position each, this run "
            f"has {accelerator.num_processes}: resume with the same number so each data shard continues"
        )
    weights = load_tensors(checkpoint / MODEL_FILE)
    try:
        set_model_state_dict(model, weights, options=_full_state_options())
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(
            f"checkpoint {checkpoint} holds another model than this run builds ({_first_problems(error)}): "
            "resume it with the model it was trained with, or train in another folder (hydra.run.dir=...)"
        ) from error
    optim_meta = read_json(checkpoint / OPTIMIZER_META)
    optim_state = unflatten_optimizer_state(load_tensors(checkpoint / OPTIMIZER_FILE), optim_meta)
    set_optimizer_state_dict(model, optimizer, optim_state, options=_full_state_options())
    return trainer_state, ranks[accelerator.process_index % saved]


def _first_problems(error: BaseException, count: int = 2, width: int = 160) -> str:
    """The first ``count`` problems of torch's many-line load_state_dict error, each cut to ``width``."""
    lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()] or [str(error)]
    cut = [line if len(line) <= width else line[: width - 3] + "..." for line in lines[:count]]
    more = f"; and {len(lines) - count} more" if len(lines) > count else ""
    return "; ".join(cut) + more


def run_config_file(checkpoint: Path) -> Path:
    """The run config file of a checkpoint folder: run_config.json, or config.json in older checkpoints."""
    checkpoint = Path(checkpoint)
    current, legacy = checkpoint / CONFIG_FILE, checkpoint / LEGACY_CONFIG_FILE
    return current if current.is_file() or not legacy.is_file() else legacy


def read_run_config(checkpoint: Path) -> dict[str, Any]:
    """The run config stored in a checkpoint folder (see ``run_config_file``)."""
    file = run_config_file(checkpoint)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {checkpoint} has no {CONFIG_FILE} (the run config)")
    return read_json(file)


@dataclass
class LoadedCheckpoint:
    """A trained model rebuilt from a checkpoint (``load_checkpoint``)."""

    model: nn.Module
    """In eval mode, fp32 weights, on the requested device."""
    run_config: dict[str, Any]
    """The run config as a plain dict: ``["model"]`` the model section (with ``arch``), ``["data"]`` the
    data section."""
    folder: Path
    """The checkpoint folder it was read from."""
    step: int
    """Optimizer steps the run had done when it was saved."""


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild a trained model from a run folder (its newest valid checkpoint) or a checkpoint folder.

    Raises FileNotFoundError for a run folder without checkpoints, CheckpointError for a damaged
    checkpoint (a file that is not safetensors or JSON included) or one whose weights do not fit the
    model its config describes.
    """
    checkpoint = resolve_checkpoint(path)
    run_config = read_run_config(checkpoint)
    if "model" not in run_config:
        raise CheckpointError(f"{run_config_file(checkpoint)} has no 'model' section")
    model = build_model_from_dict(run_config["model"])
    weights = load_tensors(checkpoint / MODEL_FILE)
    described = (
        f"model arch={run_config['model'].get('arch')!r} its {run_config_file(checkpoint).name} describes"
    )
    expected = set(model.state_dict())
    if set(weights) != expected:
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise CheckpointError(
            f"checkpoint {checkpoint} holds weights of another model than the {described}: "
            f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:  # shape mismatch
        raise CheckpointError(f"checkpoint {checkpoint} does not fit the {described}: {error}") from error
    step = int(read_json(checkpoint / TRAINER_STATE)["step"])
    return LoadedCheckpoint(model.to(device).eval(), run_config, checkpoint, step)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """(model, run config) of ``load_checkpoint(path, device)``."""
    loaded = load_checkpoint(path, device)
    return loaded.model, loaded.run_config
