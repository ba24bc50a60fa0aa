"""The run folder: its layout, its lock, and the only code that reads or writes its files by name.

Layout (the trainer writes it; evaluation and reports read it through ``RunFolder``)::

    RUN_DIR/
      run.lock                    held (flock) by the run using the folder; holds its pid and host
      config.yaml                 the resolved run config (as Hydra composed it, vocab filled in)
      tokenizer.json              copy of the tokenizer the data used (LM runs with a tokenizer)
      metrics.jsonl               one JSON object per logged step
      plots/                      loss and learning-rate curves (PNG)
      wandb/, wandb_run_id.json   wandb's offline run folder, and its id (a resumed run continues it)
      eval/<kind>.json            evaluation results (perplexity, harness, lra, synthetic)
      .hydra/, train.log          Hydra's record of the command and its log
      checkpoints/
        step_00000200/            one checkpoint; the name carries the number of optimizer steps done
          model.safetensors       fp32 weights, keys = model.state_dict() names (tied weights stored
                                  once, the alias recorded in the safetensors metadata)
          optimizer.safetensors   AdamW state tensors, keys "state/<parameter name>/<exp_avg|...>"
          optimizer.json          AdamW param_groups (lr, betas, weight decay, parameter names)
          trainer_state.json      step, tokens seen, skipped-step counts, lr schedule, loss scaler,
                                  and per process: the data loader's state and the RNG states
          run_config.json         the run config (as config.yaml, in JSON); not "config.json", which
                                  transformers would take for a model config (older checkpoints: read)
          manifest.json           size and SHA-256 of every file above; written last
        .step_00000300.PID-X.tmp/ a checkpoint being written (or abandoned by a killed process)

What a checkpoint holds and how it is checked is ``checkpoint.py``'s; where it lies is this module's.
The lock: a run holds ``fcntl.flock`` on ``run.lock`` for its whole life, so a second run on the
folder is refused at once, and a crashed run (even ``kill -9``) frees it, as the OS drops the lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from ..files import atomic_copy, atomic_write_text, default_file_mode

CONFIG = "config.yaml"
TOKENIZER = "tokenizer.json"
METRICS = "metrics.jsonl"
PLOTS = "plots"
EVAL = "eval"
LOCK = "run.lock"
HYDRA = ".hydra"
WANDB_ID = "wandb_run_id.json"
CHECKPOINTS = "checkpoints"
RESULT_KINDS = ("perplexity", "harness", "lra", "synthetic")
CONFIG_CANDIDATES = (CONFIG, "resolved_config.yaml", f"{HYDRA}/config.yaml", "config.json")
"""Where a run's resolved config may live: the trainer's own copy first, then older names and Hydra's."""

# The files of one checkpoint folder.
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
TRAINER_STATE = "trainer_state.json"
CHECKPOINT_CONFIG = "run_config.json"
LEGACY_CHECKPOINT_CONFIG = "config.json"  # the name before transformers' config name was avoided
MANIFEST = "manifest.json"

_STEP_DIR = re.compile(r"^step_(\d+)$")


class RunFolderBusy(RuntimeError):
    """Another live run holds the run folder's lock."""


def is_step_folder(path: Path) -> bool:
    return Path(path).is_dir() and _STEP_DIR.match(Path(path).name) is not None


def step_of(folder: Path) -> int:
    """The step number in a ``step_N`` folder's name."""
    return int(_STEP_DIR.match(Path(folder).name).group(1))


_HELD: dict[Path, int | None] = {}
"""Run folders whose lock this process holds (the lock file's descriptor; None on non-main processes)."""


class RunFolder:
    """One run folder (``path``; see the module docstring for what it holds)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ------------------------------------------------------------------------------------ layout
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def tokenizer_file(self) -> Path:
        return self.path / TOKENIZER

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def plots_dir(self) -> Path:
        return self.path / PLOTS

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK

    @property
    def wandb_id_file(self) -> Path:
        return self.path / WANDB_ID

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / f"step_{step:08d}"

    def result_file(self, kind: str) -> Path:
        """``eval/<kind>.json`` for one of ``RESULT_KINDS``."""
        if kind not in RESULT_KINDS:
            raise ValueError(f"unknown result kind {kind!r}; expected one of {', '.join(RESULT_KINDS)}")
        return self.path / EVAL / f"{kind}.json"

    def step_folders(self) -> list[Path]:
        """The ``checkpoints/step_*`` folders, newest (highest step) first; valid checkpoints or not."""
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(filter(is_step_folder, self.checkpoints_dir.iterdir()), key=step_of, reverse=True)

    # ----------------------------------------------------------------------------------- reading
    def read_config(self) -> dict[str, Any]:
        """The resolved config as a plain dict (the first of ``CONFIG_CANDIDATES``; {} when none exists)."""
        for name in CONFIG_CANDIDATES:
            path = self.path / name
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                try:
                    loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
                except (json.JSONDecodeError, yaml.YAMLError) as error:
                    reason = str(error).splitlines()[0]
                    raise ValueError(f"{path} is not a readable config ({reason})") from error
                return loaded if isinstance(loaded, dict) else {}
        return {}

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (see ``read_metrics``)."""
        return read_metrics(self.metrics_file)

    def hydra_choices(self) -> dict[str, str]:
        """The config-group choices Hydra recorded (``.hydra/hydra.yaml``: experiment, model, data, ...),
        or {} when the folder has none (runs made outside Hydra, checkpoints from elsewhere)."""
        path = self.path / HYDRA / "hydra.yaml"
        if not path.is_file():
            return {}
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        choices = (loaded.get("hydra") or {}).get("runtime", {}).get("choices") or {}
        return {str(key): str(value) for key, value in choices.items() if value is not None}

    # ----------------------------------------------------------------------------------- writing
    def write_config(self, config: dict[str, Any]) -> Path:
        """Write the resolved run config to ``config.yaml`` atomically."""
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        return atomic_write_text(self.config_file, text)

    def copy_tokenizer(self, source: str | os.PathLike | None) -> Path | None:
        """Copy the data's tokenizer.json into the folder (for evaluation); None when there is none."""
        if source is None:
            return None
        if not Path(source).is_file():
            raise FileNotFoundError(f"the data module's tokenizer file {source} does not exist")
        return atomic_copy(source, self.tokenizer_file)

    def write_hydra_record(self, config_yaml: str, hydra_yaml: str, overrides_yaml: str) -> None:
        """Write Hydra's record of the command (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``)
        atomically; the training command writes it once a run is accepted, not Hydra at every start."""
        for name, text in (
            ("config.yaml", config_yaml),
            ("hydra.yaml", hydra_yaml),
            ("overrides.yaml", overrides_yaml),
        ):
            atomic_write_text(self.path / HYDRA / name, text)

    def drop_metrics_after(self, step: int) -> None:
        """Keep the metrics records up to ``step`` (a run resuming from that checkpoint logs the rest
        again); also rewrites a file whose last line a killed run left cut short, so appends stay whole."""
        records, whole = _parse_metrics(self.metrics_file)
        kept = [record for record in records if record.get("step", 0) <= step]
        if whole and len(kept) == len(records):
            return
        atomic_write_text(self.metrics_file, "".join(json.dumps(record) + "\n" for record in kept))

    # -------------------------------------------------------------------------------------- lock
    @contextlib.contextmanager
    def lock(self, accelerator=None) -> Iterator[None]:
        """Hold the folder's lock for the block (the main process holds it; the others wait for its answer).

        Raises RunFolderBusy, naming the folder and the holder (pid, host), when another live run holds it.
        Nested use in one process is a no-op (the training command and ``Trainer.fit`` both take it).
        """
        key = self.path.resolve()
        if key in _HELD:
            yield
            return
        main = accelerator is None or accelerator.is_main_process
        descriptor, refusal = None, None
        if main:
            try:
                descriptor = self._acquire()
            except RunFolderBusy as error:
                refusal = str(error)
        if accelerator is not None and accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            refusal = broadcast_object_list([refusal])[0]
        if refusal is not None:
            if descriptor is not None:
                os.close(descriptor)
            raise RunFolderBusy(refusal)
        _HELD[key] = descriptor
        try:
            yield
        finally:
            del _HELD[key]
            if descriptor is not None:
                os.close(descriptor)  # closing the last descriptor releases the flock

    def _acquire(self) -> int:
        self.path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, default_file_mode())
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(descriptor)
            os.close(descriptor)
            raise RunFolderBusy(
                f"run folder {self.path} is in use by another run ({holder}); wait for it to end or "
                "choose another folder (hydra.run.dir=...)"
            ) from None
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(holder) + "\n").encode(), 0)
        return descriptor

    def holds_only(self, names: Iterable[str]) -> bool:
        """Whether the folder holds nothing but entries named in ``names`` (plus its lock file)."""
        allowed = set(names) | {LOCK}
        return self.path.is_dir() and all(entry.name in allowed for entry in self.path.iterdir())

    def remove_if_unused(self, names: Iterable[str]) -> bool:
        """Delete the folder when it holds nothing but ``names`` and the lock (a refused run on a new
        folder leaves nothing behind), unless another run holds its lock. Returns whether it was deleted."""
        if not self.holds_only(names):
            return False
        try:
            with self.lock():  # a no-op when this process holds it already
                if not self.holds_only(names):
                    return False
                shutil.rmtree(self.path, ignore_errors=True)
                return True
        except RunFolderBusy:
            return False


def _describe_holder(descriptor: int) -> str:
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode())
        return f"pid {holder['pid']} on host {holder['host']}, since {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _parse_metrics(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """(records, whether the file ends with a whole line); ([], True) when it does not exist."""
    path = Path(path)
    if not path.exists():
        return [], True
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            if number == len(lines):  # a killed run's half-written last line
                return records, False
            raise ValueError(f"{path}:{number} is not a metrics record ({error})") from error
        records.append(record)
    return records, not text or text.endswith("\n")


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, in file order ([] when the file does not exist).

    A last line cut short by a killed run is skipped; a damaged line before it raises ValueError naming
    the file and the line number.
    """
    return _parse_metrics(Path(path))[0]


def holds_training_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder with checkpoints or one checkpoint folder (by its file names)."""
    path = Path(path)
    return (path / CHECKPOINTS).is_dir() or (path / MANIFEST).is_file() or (path / MODEL_FILE).is_file()


def find_run_folder(path: str | os.PathLike) -> RunFolder | None:
    """The run folder a run or checkpoint path belongs to: the nearest of the path, its parent and its
    grandparent (RUN_DIR/checkpoints/step_N) that holds metrics.jsonl or config.yaml; None when none does
    (a checkpoint or model from elsewhere)."""
    path = Path(path)
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / METRICS).is_file() or (candidate / CONFIG).is_file():
            return RunFolder(candidate)
    return None


def shared_run_dir(accelerator, own_dir: str | os.PathLike, hydra_files: Iterable[str]) -> Path:
    """The main process's run folder, on every process.

    With ``accelerate launch`` each process composes its own Hydra config; a timestamped
    ``hydra.run.dir`` may then differ by a second between processes. All use the main process's
    folder, and a folder another process got from Hydra (holding only ``hydra_files``) is removed.
    """
    from accelerate.utils import broadcast_object_list

    own_dir = Path(own_dir).resolve()
    shared = Path(broadcast_object_list([str(own_dir)])[0])
    if shared != own_dir:
        RunFolder(own_dir).remove_if_unused(hydra_files)
    return shared
