"""The training command: ``python train.py [hydra overrides]`` in a checkout, ``mamba-lm-train [overrides]``
for an installed package; configs/train.yaml lists the choices.

No arguments: a small Mamba on the embedded corpus, CPU-friendly. Multi-GPU and FSDP runs go
through accelerate's launcher, e.g. ``accelerate launch --config_file configs/accelerate/ddp.yaml
train.py experiment=paper/mamba_130m hydra.run.dir=outputs/mamba_130m``. ``model.init_from=PATH``
starts from pretrained weights (any folder ``mamba_lm.from_pretrained`` reads), with a fresh optimizer.

Exit status: 0 when the run finished; after SIGTERM (or a first Ctrl-C) the run saves a checkpoint and
exits with 128 + the signal's number, 143 for SIGTERM (130 for Ctrl-C), so a job script can tell a
stopped run, which ``resume=auto`` continues, from a finished one.

This is the one module that joins the data package and the trainer; the Hydra configs come from the
checkout's configs/ or, in an installed package, from the copy shipped with it (``config_files``).
"""

from __future__ import annotations

import sys

import hydra
from accelerate.utils import set_seed
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mamba_lm.data import build_datamodule, parse_data_config

from ..pretrained import folder_format, load_pretrained_weights
from .config_files import config_dir
from .config_store import register_configs
from .loop import Trainer
from .model_factory import INIT_FROM, build_model_from_dict, fit_model_to_data, model_config_from_dict
from .run_folder import copy_tokenizer, shared_run_dir, write_text_atomic
from .runtime import configure_logging, make_accelerator
from .signals import exit_status

register_configs()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | None:
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
    run_dir = shared_run_dir(accelerator, HydraConfig.get().runtime.output_dir)
    set_seed(run.seed)
    rank, world_size = accelerator.process_index, accelerator.num_processes
    data = build_datamodule(cfg.data, seed=run.seed, rank=rank, world_size=world_size)
    model_values = fit_model_to_data(model_values, data.task, data.vocab_size, data.num_classes)
    model = build_model_from_dict(model_values)
    if init_from:
        load_pretrained_weights(model, init_from)

    run_config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    run_config["model"] = model_values
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(run_config))
        copy_tokenizer(data.tokenizer_file, run_dir)

    trainer = Trainer(
        accelerator=accelerator,
        model=model,
        train_loader=data.train_loader(run.trainer.micro_batch_size),
        val_loader=data.val_loader,
        run_dir=run_dir,
        run_config=run_config,
        optim=run.optim,
        trainer=run.trainer,
        logger=run.logger,
        task=data.task,
        seqlen=data.seqlen,
        resume=run.resume,
    )
    summary = trainer.fit()
    if accelerator.is_main_process:
        how = f"stopped by {summary.stopped_by_signal}" if summary.stopped_by_signal else "finished"
        print(f"{how} at step {summary.step}; run folder {run_dir}; last checkpoint {summary.checkpoint}")
    if summary.stopped_by_signal:
        sys.exit(exit_status(summary.stopped_by_signal))
    return summary.last_metrics.get("val_loss")


def main() -> None:
    """Console entry point ``mamba-lm-train``."""
    train()


if __name__ == "__main__":  # python -m mamba_lm.trainer.app (evaluation's quick LRA runs)
    main()
