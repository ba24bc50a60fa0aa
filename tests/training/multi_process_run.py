"""A small LM training run for the multi-process tests, started once per process by ``accelerate launch``
(or run alone as one process).

    python tests/training/multi_process_run.py RUN_DIR --data JSON [--micro-batch B] [--grad-accum G]
        [--max-steps N] [--save-every S] [--resume auto|PATH] [--model NAME] [--precision P] [--device D]

Trains the tiny Mamba (fp32, CPU; warmup then a constant lr, so a run cut at any step continues
the same schedule) on ``build_datamodule(JSON)`` with this process's rank share; ``--model`` takes a
``mamba_lm.configs`` name instead (e.g. mamba_130m, its vocabulary the data's), ``--device cuda
--precision bf16`` the GPU runs of tests/training/test_multi_gpu.py. The loss
of every step lands in RUN_DIR/metrics.jsonl (main process) and the weights in the checkpoints; each
process also writes RUN_DIR/rank{i}.json with its rank, world size and the step it reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_mamba  # noqa: E402
from mamba_lm.data import build_datamodule  # noqa: E402

from mamba_lm import build_model, configs  # noqa: E402
from mamba_lm.trainer import LoggerConfig, OptimConfig, Trainer, TrainerConfig, make_accelerator  # noqa: E402
from mamba_lm.trainer.model_factory import model_config_to_dict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=json.loads, required=True)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--save-every", type=int, default=0)
    parser.add_argument("--resume", default="auto")
    parser.add_argument("--model", default="tiny", help="tiny, or a mamba_lm.configs name")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()

    torch.set_num_threads(1)
    accelerator = make_accelerator(args.precision, cpu=args.device == "cpu")
    rank, world_size = accelerator.process_index, accelerator.num_processes
    datamodule = build_datamodule(args.data, seed=0, rank=rank, world_size=world_size)
    if args.model == "tiny":
        model = tiny_mamba(seed=0, vocab=datamodule.vocab_size)
    else:
        torch.manual_seed(0)
        model = build_model(configs.get(args.model, vocab_size=datamodule.vocab_size))
    trainer = Trainer(
        accelerator=accelerator,
        model=model,
        train_loader=datamodule.train_loader(args.micro_batch),
        run_dir=args.run_dir,
        run_config={"model": model_config_to_dict(model.config), "seed": 0},
        optim=OptimConfig(lr=3e-3, warmup_steps=2, schedule="constant"),  # the same lr for any max_steps
        trainer=TrainerConfig(
            max_steps=args.max_steps,
            micro_batch_size=args.micro_batch,
            grad_accum_steps=args.grad_accum,
            save_every=args.save_every,
            keep_last=10,
            log_every=1,
            eval_every=0,
            progress_bar=False,
            plots=False,
        ),
        logger=LoggerConfig(backend="none"),
        val_loader=datamodule.val_loader,
        seqlen=datamodule.seqlen,
        resume=args.resume,
    )
    summary = trainer.fit()
    report = {"rank": rank, "world_size": world_size, "step": summary.step}
    (args.run_dir / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
