"""Small, deterministic stand-ins for a data module's loaders, and a tiny model, for the trainer's tests."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import torch

from mamba_lm.config import MambaConfig
from mamba_lm.models import MambaLMHeadModel

VOCAB = 32
SEQLEN = 16


class CountingLoader:
    """Infinite batches of 'count up by a per-row stride' rows: learnable, deterministic in (seed, position).

    Each process (rank) draws from its own stream. ``state_dict`` is the position, like a real
    loader's resumable state; ``seen`` records the first token of every row served (for tests).
    """

    def __init__(
        self, batch_size: int, seed: int = 0, rank: int = 0, vocab: int = VOCAB, seqlen: int = SEQLEN
    ):
        self.batch_size, self.seed, self.rank, self.vocab, self.seqlen = batch_size, seed, rank, vocab, seqlen
        self.position = 0
        self.seen: list[int] = []

    def batch_at(self, position: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7919 + position)
        start = torch.randint(0, self.vocab, (self.batch_size, 1), generator=generator)
        stride = torch.randint(1, 4, (self.batch_size, 1), generator=generator)
        tokens = (start + stride * torch.arange(self.seqlen + 1)) % self.vocab
        return {"input_ids": tokens[:, :-1].contiguous(), "labels": tokens[:, 1:].contiguous()}

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = self.batch_at(self.position)
        self.position += 1
        self.seen.extend(batch["input_ids"][:, 0].tolist())
        return batch

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


def validation_batches(batch_size: int, count: int = 2):
    """A fresh finite validation iterable (positions far from the training stream's)."""
    loader = CountingLoader(batch_size, seed=12345)
    return [loader.batch_at(10_000 + i) for i in range(count)]


def tiny_mamba(seed: int = 0, vocab: int = VOCAB) -> MambaLMHeadModel:
    torch.manual_seed(seed)
    return MambaLMHeadModel(MambaConfig(d_model=16, n_layer=2, vocab_size=vocab))


def tiny_trainer(accelerator, run_dir, model=None, loader=None, resume="auto", lr=3e-3, **trainer_overrides):
    """A Trainer over ``tiny_mamba`` and ``CountingLoader`` with quiet, fast settings."""
    from mamba_lm.trainer import LoggerConfig, OptimConfig, Trainer, TrainerConfig
    from mamba_lm.trainer.model_factory import model_config_to_dict

    model = model if model is not None else tiny_mamba()
    settings = dict(max_steps=6, micro_batch_size=4, log_every=1, eval_every=0, save_every=3)
    settings["progress_bar"] = False
    settings.update(trainer_overrides)
    config = getattr(model, "config", None)
    run_config = {"model": model_config_to_dict(config) if config is not None else {}, "seed": 0}
    return Trainer(
        accelerator=accelerator,
        model=model,
        train_loader=loader if loader is not None else CountingLoader(settings["micro_batch_size"]),
        run_dir=run_dir,
        run_config=run_config,
        optim=OptimConfig(lr=lr, warmup_steps=2),
        trainer=TrainerConfig(**settings),
        logger=LoggerConfig(backend="none"),
        val_loader=validation_batches,
        seqlen=SEQLEN,
        resume=resume,
    )


def logged(run_dir, key: str = "loss") -> list:
    """The values of ``key`` in a run's metrics.jsonl, in order."""
    from mamba_lm.trainer.metrics import read_metrics

    return [record[key] for record in read_metrics(run_dir / "metrics.jsonl") if key in record]


def random_words_corpus(folder: Path, name: str, documents: int, words: int) -> dict:
    """A data config over a generated jsonl corpus of random lowercase words (no two 16-token blocks alike):
    the real LM pipeline (BPE tokenizer, shards, rank shares) on data a test makes in a second."""
    rng = random.Random(0)
    with open(folder / "corpus.jsonl", "w") as f:
        for _ in range(documents):
            text = " ".join(
                "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 8))) for _ in range(words)
            )
            f.write(json.dumps({"text": text}) + "\n")
    return {
        "kind": "lm",
        "name": name,
        "seqlen": 16,
        "cache_dir": str(folder / "cache"),
        "dataset": {"source": "files", "files": [str(folder / "corpus.jsonl")]},
        "tokenizer": {"source": "train", "vocab_size": 300},
        "validation": {"fraction": 0.05, "max_blocks": 8},
    }
