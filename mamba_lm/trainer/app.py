"""The training command: ``python train.py [hydra overrides]`` in a checkout, ``mamba-lm-train [overrides]``
for an installed package; configs/train.yaml lists the choices.

No arguments: a small Mamba on the embedded corpus, CPU-friendly. Multi-GPU and FSDP runs go
through accelerate's launcher, e.g. ``accelerate launch --config_file configs/accelerate/ddp.yaml
train.py experiment=paper/mamba_130m hydra.run.dir=outputs/mamba_130m``. ``model.init_from=PATH``
starts from pretrained weights (any folder ``mamba_lm.from_pretrained`` reads), with a fresh optimizer.

Exit status: 0 when the run finished; after SIGTERM (or a first Ctrl-C) the run saves a checkpoint and
exits with 128 + the signal's number, 143 for SIGTERM (130 for Ctrl-C), so a job script can tell a
stopped run, which ``resume=auto`` continues, from a finished one. An error (a value out of range, the
data, a checkpoint, a run folder in use or unusable) prints one line ``error: <cause>`` and exits with 1;
``MAMBA_LM_DEBUG=1`` shows the traceback instead.

The run holds the run folder's lock from the start (a second run on the folder is refused at once);
every check of a resume runs before anything in the folder is written, Hydra's record (.hydra/) included,
which is written only once the run is accepted; a refused run on a new folder removes the folder Hydra
made for it.

This is the one module that joins the data package and the trainer; the Hydra configs come from the
checkout's configs/ or, in an installed package, from the copy shipped with it (``mamba_lm.config_files``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import hydra
from accelerate.utils import set_seed
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mamba_lm.data import build_datamodule, parse_data_config

from ..config_files import config_dir
from ..pretrained import folder_format, load_pretrained_weights
from .config_store import register_configs
from .loop import Trainer
from .model_factory import INIT_FROM, build_model_from_dict, fit_model_to_data, model_config_from_dict
from .run_folder import HYDRA, RunFolder, shared_run_dir
from .runtime import configure_logging, make_accelerator
from .signals import exit_status

register_configs()


DEBUG_ENV = "MAMBA_LM_DEBUG"
_HYDRA_RECORD_OVERRIDE = "hydra.output_subdir=null"  # main: the app writes .hydra/ after the resume checks
_EXPECTED_ERRORS = (ValueError, OSError, RuntimeError, HydraException, OmegaConfBaseException)
_started = False  # whether Hydra reached ``train`` (an OSError before it: hydra.run.dir is unusable)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | None:
    global _started
    _started = True
    hydra_files = {HYDRA, f"{HydraConfig.get().job.name}.log"}
    own_folder = RunFolder(HydraConfig.get().runtime.output_dir)
    new_folder = own_folder.holds_only(hydra_files)
    try:
        return _checked_run(cfg, hydra_files)
    except BaseException as error:
        if new_folder:
            own_folder.remove_if_unused(hydra_files)  # a refused run leaves no empty folder behind
        if isinstance(error, Exception) and not _debugging():
            _exit_with(error)  # here, not after Hydra's own report of the failed job
        raise


def _checked_run(cfg: DictConfig, hydra_files: set[str]) -> float | None:
    # Validate everything before any work: types and keys were checked by Hydra, ranges here.
    run = OmegaConf.to_object(cfg)
    model_values = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    model_config_from_dict(model_values)
    parse_data_config(cfg.data)
    init_from = model_values.get(INIT_FROM)
    if init_from:
        folder_format(init_from)  # a path that holds no model fails here, before any data is built

    configure_logging()
    accelerator = make_accelerator(run.trainer.precision, run.trainer.cpu)
    folder = RunFolder(shared_run_dir(accelerator, HydraConfig.get().runtime.output_dir, hydra_files))
    with folder.lock(accelerator):
        summary = _train(cfg, run, model_values, accelerator, folder)
    if accelerator.is_main_process:
        how = f"stopped by {summary.stopped_by_signal}" if summary.stopped_by_signal else "finished"
        print(f"{how} at step {summary.step}; run folder {folder.path}; last checkpoint {summary.checkpoint}")
    if summary.stopped_by_signal:
        sys.exit(exit_status(summary.stopped_by_signal))
    return summary.last_metrics.get("val_loss")


def _train(cfg: DictConfig, run, model_values: dict, accelerator, folder: RunFolder):
    """Data, model, the checks of a resume, then the run's files and training (under the folder's lock)."""
    set_seed(run.seed)
    rank, world_size = accelerator.process_index, accelerator.num_processes
    data = build_datamodule(cfg.data, seed=run.seed, rank=rank, world_size=world_size)
    model_values = fit_model_to_data(model_values, data.task, data.vocab_size, data.num_classes)
    model = build_model_from_dict(model_values)
    init_from = model_values.get(INIT_FROM)
    if init_from:
        load_pretrained_weights(model, init_from)

    run_config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    run_config["model"] = model_values
    trainer = Trainer(
        accelerator=accelerator,
        model=model,
        train_loader=data.train_loader(run.trainer.micro_batch_size),
        val_loader=data.val_loader,
        run_dir=folder.path,
        run_config=run_config,
        optim=run.optim,
        trainer=run.trainer,
        logger=run.logger,
        task=data.task,
        seqlen=data.seqlen,
        resume=run.resume,
    )
    trainer.prepare()  # a refused resume stops here, before the folder's files are touched
    if accelerator.is_main_process:
        folder.write_config(run_config)
        folder.copy_tokenizer(data.tokenizer_file)
        if HydraConfig.get().output_subdir is None and _HYDRA_RECORD_OVERRIDE in sys.argv:
            _write_hydra_record(cfg, folder)
    return trainer.fit()


def _write_hydra_record(cfg: DictConfig, folder: RunFolder) -> None:
    """Hydra's .hydra/ record, as Hydra writes it, once the run is accepted (see ``main``)."""
    hydra_config = HydraConfig.get()
    folder.write_hydra_record(
        OmegaConf.to_yaml(cfg),
        OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_config})),
        OmegaConf.to_yaml(hydra_config.overrides.task),
    )


def one_line(error: BaseException) -> str:
    """An error as one line: its message (for Hydra's, without the config search path, with its cause's
    first line), lines joined by '; '. Errors outside the expected kinds (a bug rather than a bad input)
    keep their type's name in front."""
    if isinstance(error, HydraException):
        text = _hydra_text(str(error))
        if error.__cause__ is not None and str(error.__cause__):
            text += f"; {str(error.__cause__).splitlines()[0]}"
        return text
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, OSError) and not _started:
        return f"cannot use hydra.run.dir as the run folder: {text}"
    if not isinstance(error, _EXPECTED_ERRORS) or not text:
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text


def _hydra_text(text: str) -> str:
    """Hydra's paragraphs on one line; a list ("Available options in 'model':" and its items) as a, b, c."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if "Config search path:" in lines:  # where Hydra looked: no help in one line
            lines = lines[: lines.index("Config search path:")]
        if not lines:
            continue
        if lines[0].endswith(":") and len(lines) > 1:
            paragraphs.append(f"{lines[0]} {', '.join(lines[1:])}")
        else:
            paragraphs.append("; ".join(lines))
    return "; ".join(paragraphs)


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def _exit_with(error: BaseException) -> None:
    print(f"error: {one_line(error)}", file=sys.stderr, flush=True)
    sys.exit(1)


@contextlib.contextmanager
def _hydra_raises() -> Iterator[None]:
    """Let Hydra pass errors on (HYDRA_FULL_ERROR) instead of printing their traceback itself."""
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def main() -> None:
    """Console entry point ``mamba-lm-train``: an error prints ``error: <cause>`` and exits with status 1
    (with ``MAMBA_LM_DEBUG=1``, the traceback)."""
    if not any(argument.lstrip("+").startswith("hydra.output_subdir=") for argument in sys.argv[1:]):
        sys.argv.append(_HYDRA_RECORD_OVERRIDE)  # Hydra would rewrite .hydra/ even on a refused start
    if _debugging():
        train()
        return
    try:
        with _hydra_raises():
            train()
    except Exception as error:  # before the run started: Hydra's composition, an unusable hydra.run.dir
        _exit_with(error)


if __name__ == "__main__":  # python -m mamba_lm.trainer.app (evaluation's quick LRA runs)
    main()
