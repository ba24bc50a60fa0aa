"""A small training run for tests that need a process of their own (SIGTERM) or several (accelerate launch).

    python tests/training/tiny_run.py RUN_DIR [--max-steps N] [--save-every N] [--batch-delay S] [--data JSON]

Trains the tiny Mamba on ``CountingLoader`` or, with ``--data``, on ``data.build_datamodule(JSON)``.
Each process writes RUN_DIR/rank{i}.json: a SHA-256 of the weights it holds, a fingerprint of every
training row it was given, and the summary of ``Trainer.fit``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from helpers import CountingLoader, tiny_mamba, validation_batches  # noqa: E402

from mamba_lm.trainer import LoggerConfig, OptimConfig, Trainer, TrainerConfig, make_accelerator  # noqa: E402
from mamba_lm.trainer.model_factory import model_config_to_dict  # noqa: E402

QUIET = dict(log_every=1, eval_every=0, progress_bar=False)


class RecordingLoader:
    """Passes batches through, remembering a fingerprint of each row (and waiting ``delay`` seconds)."""

    def __init__(self, loader, delay: float):
        self.loader, self.delay, self.rows = loader, delay, []

    def __iter__(self):
        for batch in self.loader:
            time.sleep(self.delay)
            for row in batch["input_ids"]:
                self.rows.append(hashlib.sha256(row.numpy().tobytes()).hexdigest()[:16])
            yield batch

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--save-every", type=int, default=3)
    parser.add_argument("--batch-delay", type=float, default=0.0)
    parser.add_argument("--data", type=json.loads, default=None)
    args = parser.parse_args()

    accelerator = make_accelerator("fp32", cpu=True)
    rank, world_size = accelerator.process_index, accelerator.num_processes
    if args.data is None:
        vocab, loader, val_loader = None, CountingLoader(4, rank=rank), validation_batches
    else:
        from mamba_lm.data import build_datamodule

        datamodule = build_datamodule(args.data, seed=0, rank=rank, world_size=world_size)
        vocab, loader, val_loader = datamodule.vocab_size, datamodule.train_loader(4), datamodule.val_loader
    torch.manual_seed(0)
    model = tiny_mamba() if vocab is None else tiny_mamba(vocab=vocab)
    recording = RecordingLoader(loader, args.batch_delay)
    trainer = Trainer(
        accelerator=accelerator,
        model=model,
        train_loader=recording,
        run_dir=args.run_dir,
        run_config={"model": model_config_to_dict(model.config), "seed": 0},
        optim=OptimConfig(lr=3e-3, warmup_steps=2),
        trainer=TrainerConfig(max_steps=args.max_steps, save_every=args.save_every, **QUIET),
        logger=LoggerConfig(backend="none"),
        val_loader=val_loader,
        seqlen=16,
    )
    summary = trainer.fit()
    report = {
        "rank": rank,
        "world_size": world_size,
        "weights": weights_digest(model),
        "rows": recording.rows,
        "step": summary.step,
        "stopped_by_signal": summary.stopped_by_signal,
        "checkpoint": str(summary.checkpoint),
    }
    (args.run_dir / f"rank{rank}.json").write_text(json.dumps(report))
    if summary.stopped_by_signal:
        print(f"stopped by {summary.stopped_by_signal} at step {summary.step}", flush=True)


if __name__ == "__main__":
    main()
