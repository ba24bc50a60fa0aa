"""Selective Copying and Induction Heads: structure of every example, reproducibility, loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mamba_lm.data import build_datamodule
from mamba_lm.data.synthetic.tasks import IGNORE, induction_heads_example, selective_copying_example


@pytest.mark.parametrize("seqlen,vocab,count", [(4096, 16, 16), (64, 16, 16), (40, 5, 8)])
def test_selective_copying_structure(seqlen, vocab, count):
    rng = np.random.default_rng(0)
    for _ in range(20):
        inputs, labels = selective_copying_example(rng, seqlen, vocab, count)
        assert inputs.shape == labels.shape == (seqlen,) and inputs.dtype == np.int64
        region, markers = inputs[: seqlen - count], inputs[seqlen - count :]
        assert np.all(markers == vocab - 1)
        data = region[region != 0]
        assert len(data) == count and np.all((data >= 1) & (data <= vocab - 2))
        assert np.array_equal(labels[seqlen - count :], data)  # the data tokens, in order
        assert np.all(labels[: seqlen - count] == IGNORE)


def test_selective_copying_spreads_the_data_over_the_whole_region():
    """As S4's variable copying (the Mamba paper's Selective Copying): the data positions are a uniform
    random subset of the region before the markers, not front-loaded as in the plain Copying task, and the
    data tokens are uniform over ids 1..vocab-2."""
    rng = np.random.default_rng(2)
    seqlen, vocab, count = 64, 16, 8
    region = seqlen - count
    hits = np.zeros(region)
    tokens = np.zeros(vocab)
    for _ in range(2000):
        inputs, _ = selective_copying_example(rng, seqlen, vocab, count)
        hits += inputs[:region] != 0
        tokens += np.bincount(inputs[:region][inputs[:region] != 0], minlength=vocab)
    frequency = hits / 2000  # each position holds a data token with probability count / region
    assert np.all(np.abs(frequency - count / region) < 0.05)
    assert tokens[0] == tokens[vocab - 1] == 0
    assert np.all(np.abs(tokens[1:-1] / tokens.sum() - 1 / (vocab - 2)) < 0.01)


@pytest.mark.parametrize("seqlen", [4, 64, 256, 4096])
def test_induction_heads_structure(seqlen):
    rng = np.random.default_rng(1)
    for _ in range(50):
        inputs, labels = induction_heads_example(rng, seqlen, vocab_size=16)
        triggers = np.flatnonzero(inputs == 15)
        assert len(triggers) == 2 and triggers[1] == seqlen - 1
        assert np.all((inputs >= 0) & (inputs <= 15))
        assert np.flatnonzero(labels != IGNORE).tolist() == [seqlen - 1]
        assert labels[-1] == inputs[triggers[0] + 1] != 15


def test_synthetic_loaders_are_reproducible_and_resumable():
    module = build_datamodule({"kind": "selective_copying", "seqlen": 128}, seed=7)
    assert (module.task, module.vocab_size, module.num_classes, module.tokenizer_file) == (
        "lm",
        16,
        None,
        None,
    )
    straight = [next(loader)["input_ids"] for loader in [module.train_loader(4)] for _ in range(6)]
    first = module.train_loader(4)
    head = [next(first)["input_ids"] for _ in range(2)]
    resumed = build_datamodule({"kind": "selective_copying", "seqlen": 128}, seed=7).train_loader(4)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    tail = [next(resumed)["input_ids"] for _ in range(4)]
    assert all((a == b).all() for a, b in zip(head + tail, straight))
    other = next(build_datamodule({"kind": "selective_copying", "seqlen": 128}, seed=8).train_loader(4))
    assert not (other["input_ids"] == straight[0]).all()
    ranks = [
        next(build_datamodule({"kind": "selective_copying", "seqlen": 128}, 7, r, 2).train_loader(2))
        for r in (0, 1)
    ]
    assert (ranks[0]["input_ids"] == straight[0][:2]).all() and (
        ranks[1]["input_ids"] == straight[0][2:]
    ).all()


def test_induction_heads_validation_at_any_length():
    module = build_datamodule(
        {"kind": "induction_heads", "val_examples": 6, "eval_seqlens": [64, 2**20]}, seed=0
    )
    assert module.seqlen == 256 and module.eval_seqlens == [64, 2**20]
    for length in (64, 256, 2**20):
        batches = list(module.val_loader(4, seqlen=length))
        assert [b["input_ids"].shape for b in batches] == [(4, length), (2, length)]
        again = next(iter(module.val_loader(4, seqlen=length)))
        assert (again["input_ids"] == batches[0]["input_ids"]).all()
        assert ((batches[0]["labels"] != IGNORE).sum(dim=1) == 1).all()
    assert (next(iter(module.val_loader(2)))["input_ids"].shape) == (2, 256)
    other_run = build_datamodule({"kind": "induction_heads", "val_examples": 6}, seed=99)
    assert (
        next(iter(other_run.val_loader(2)))["input_ids"] == next(iter(module.val_loader(2)))["input_ids"]
    ).all()


def test_induction_heads_can_supervise_every_position(tmp_path):
    """supervise: all (H3 / safari's setting): training labels are the next tokens everywhere, the answer
    last; validation still scores the answer only."""
    config = {"kind": "induction_heads", "seqlen": 32, "supervise": "all", "val_examples": 4}
    module = build_datamodule(config, seed=3)
    batch = next(module.train_loader(4))
    ids, labels = batch["input_ids"], batch["labels"]
    assert (labels[:, :-1] == ids[:, 1:]).all()
    answer_only = build_datamodule({**config, "supervise": "answer"}, seed=3)
    reference = next(answer_only.train_loader(4))
    assert (ids == reference["input_ids"]).all() and (labels[:, -1] == reference["labels"][:, -1]).all()
    assert (reference["labels"][:, :-1] == IGNORE).all()
    val = next(iter(module.val_loader(4)))
    assert (val["labels"][:, :-1] == IGNORE).all()
    with pytest.raises(ValueError, match="supervise"):
        build_datamodule({**config, "supervise": "some"}, seed=0)


def test_induction_heads_fixed_trigger_position():
    """data.trigger_position=K puts the first trigger at index K at the training and every test length
    (the public reproduction's "TTTTTSM...SM"); null keeps it uniformly random over [0, length - 3]."""
    config = {"kind": "induction_heads", "seqlen": 64, "trigger_position": 5, "val_examples": 4}
    module = build_datamodule({**config, "eval_seqlens": [16, 1024]}, seed=0)
    tests = [next(iter(module.val_loader(4, seqlen=length))) for length in (16, 1024)]
    batches = [next(module.train_loader(8)), *tests]
    for batch in batches:
        ids, labels = batch["input_ids"], batch["labels"]
        assert (ids[:, 5] == 15).all() and (ids[:, -1] == 15).all() and (ids == 15).sum() == 2 * len(ids)
        assert (labels[:, -1] == ids[:, 6]).all()
    rng = np.random.default_rng(0)
    firsts = {int(np.flatnonzero(induction_heads_example(rng, 8)[0] == 15)[0]) for _ in range(400)}
    assert firsts == set(range(6))  # uniform over [0, 8 - 3]
    assert np.flatnonzero(induction_heads_example(rng, 8, trigger_position=5)[0] == 15).tolist() == [5, 7]
    with pytest.raises(ValueError, match="trigger_position"):
        induction_heads_example(rng, 8, trigger_position=6)
    with pytest.raises(ValueError, match=r"trigger_position=14 .* shortest training or test length, 16"):
        build_datamodule({**config, "trigger_position": 14, "eval_seqlens": [16]}, seed=0)
