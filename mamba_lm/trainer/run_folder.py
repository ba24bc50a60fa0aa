"""The run folder's own files: one folder shared by all processes, the resolved config, the tokenizer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_HYDRA_ONLY = {".hydra", "train.log"}


def shared_run_dir(accelerator, own_dir: str | Path) -> Path:
    """The main process's run folder, on every process.

    With ``accelerate launch`` each process composes its own Hydra config; a timestamped
    ``hydra.run.dir`` may then differ by a second between processes. All use the main process's
    folder, and a folder another process got from Hydra (holding only Hydra's files) is removed.
    """
    from accelerate.utils import broadcast_object_list

    own_dir = Path(own_dir).resolve()
    shared = Path(broadcast_object_list([str(own_dir)])[0])
    if shared != own_dir and own_dir.is_dir() and {p.name for p in own_dir.iterdir()} <= _HYDRA_ONLY:
        shutil.rmtree(own_dir, ignore_errors=True)
    return shared


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def copy_tokenizer(tokenizer_file: str | Path | None, run_dir: Path) -> Path | None:
    """Copy the data's tokenizer.json into the run folder (for evaluation); None when there is none."""
    if tokenizer_file is None:
        return None
    source = Path(tokenizer_file)
    if not source.is_file():
        raise FileNotFoundError(f"the data module's tokenizer file {source} does not exist")
    target = Path(run_dir) / "tokenizer.json"
    tmp = target.with_name(f".tokenizer.json.tmp-{os.getpid()}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return target
