"""Small real parts for the evaluation tests: a byte-level BPE tokenizer trained on generated text,
tiny Mamba / S4D / Transformer++ language models (random weights, fixed seeds), log-likelihoods
computed directly, and ``python train.py`` runs in a subprocess."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mamba_lm import MambaConfig, MambaLMHeadModel, TransformerConfig, TransformerLMHeadModel

REPO_ROOT = Path(__file__).resolve().parents[2]
EOS = "<|endoftext|>"
WORDS = "the a cat dog sat ran on under mat tree red blue big small quickly slowly and then".split()  # noqa: SIM905


def generated_sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(count)]


def train_tokenizer(path: Path, vocab_size: int = 320) -> Path:
    """A byte-level BPE with an EOS token, trained on generated sentences, saved as tokenizer.json."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(generated_sentences(300), trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def tiny_lm(kind: str, vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A 2-layer random LM: "mamba", "s4d" or "transformer"."""
    torch.manual_seed(seed)
    if kind == "transformer":
        config = TransformerConfig(d_model=32, n_layer=2, n_head=2, vocab_size=vocab_size)
        return TransformerLMHeadModel(config).eval()
    ssm_cfg = {"layer": "S4D"} if kind == "s4d" else {}
    return MambaLMHeadModel(MambaConfig(d_model=32, n_layer=2, vocab_size=vocab_size, ssm_cfg=ssm_cfg)).eval()


def direct_logprob(model: torch.nn.Module, context: list[int], continuation: list[int]) -> tuple[float, bool]:
    """Unbatched, unpadded: log p(continuation | context) and whether it is the greedy continuation."""
    tokens = torch.tensor(context + continuation)[None]
    with torch.no_grad():
        log_probs = F.log_softmax(model(tokens[:, :-1]).logits[0].double(), dim=-1)
    positions = range(len(context) - 1, len(context) + len(continuation) - 1)
    total = sum(float(log_probs[p, t]) for p, t in zip(positions, continuation))
    greedy = all(int(log_probs[p].argmax()) == t for p, t in zip(positions, continuation))
    return total, greedy


def subprocess_env() -> dict[str, str]:
    """The environment for the commands these tests start, as a user's shell would have it: without
    the ``TRITON_INTERPRET=1`` that tests/conftest.py sets for the kernel tests (whole models under
    Triton's interpreter would take minutes per step)."""
    return {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}


def run_train(run_dir: Path, *overrides: str, timeout: float = 600) -> Path:
    """``python train.py`` (the real entry point) on the CPU with a few steps; returns the run folder."""
    quick = [
        f"hydra.run.dir={run_dir}",
        "logger=none",
        "trainer.cpu=true",
        "trainer.precision=fp32",
        "trainer.progress_bar=false",
        "trainer.eval_every=0",
        "trainer.save_every=0",
    ]
    command = [sys.executable, str(REPO_ROOT / "train.py"), *quick, *overrides]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=subprocess_env()
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return run_dir
