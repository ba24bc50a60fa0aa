"""Synthetic tasks: recurrent (constant-memory) predictions equal parallel ones; the induction-heads
table over test lengths; selective-copying accuracy; errors for runs of other tasks; the fp32 scan's
memory over long test lengths against fp64."""

from __future__ import annotations

import json

import pytest
import torch
from evaluation_parts import tiny_lm
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.recurrent import predictions_at_labels
from mamba_lm.evaluation.results import earlier_evaluations, load_results
from mamba_lm.evaluation.synthetic import evaluate_length, length_generalization
from mamba_lm.kernels.selective_scan import selective_scan_fn


@pytest.mark.parametrize("kind", ["mamba", "s4d", "transformer"])
def test_recurrent_predictions_equal_parallel_ones(kind: str) -> None:
    model = tiny_lm(kind, 16, seed=3)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, 16, (3, 90), generator=generator)
    labels = torch.full_like(input_ids, -100)
    labels[:, [5, 40, 89]] = torch.randint(0, 16, (3, 3), generator=generator)
    parallel = predictions_at_labels(model, input_ids, labels, "parallel", vocab_size=16)
    recurrent = predictions_at_labels(model, input_ids, labels, "recurrent", prefill=16, vocab_size=16)
    assert parallel.shape == (9,)
    assert torch.equal(parallel, recurrent)


def test_accuracy_counts_labelled_positions() -> None:
    model = tiny_lm("mamba", 16)
    input_ids = torch.randint(0, 16, (4, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        greedy = model(input_ids).logits[..., :16].argmax(-1)
    labels = torch.full_like(input_ids, -100)
    labels[:, -2:] = greedy[:, -2:]  # both right
    labels[0, -1] = (greedy[0, -1] + 1) % 16  # one wrong: sequence 0 fails
    result = evaluate_length(model, [{"input_ids": input_ids, "labels": labels}], 20, 16, "parallel", 8)
    assert (result.correct, result.labelled) == (7, 8)
    assert result.accuracy == pytest.approx(87.5)
    assert result.sequence_accuracy == pytest.approx(75.0)


@pytest.mark.slow
def test_induction_heads_table_over_lengths(induction_run, capsys) -> None:
    assert (
        main(
            [
                "synthetic",
                f"checkpoint={induction_run}",
                "lengths=64,128",
                "examples=8",
                "batch_size=4",
                "parallel_max_length=64",
                "prefill=16",
                "device=cpu",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "2^6" in printed and "2^7" in printed
    entry = load_results(induction_run, "synthetic")["induction_heads"]
    assert entry["lengths"] == [64, 128] and entry["modes"] == ["parallel", "recurrent"]
    assert entry["sequences"] == [8, 8] and entry["train_length"] == 64
    assert isinstance(entry["step"], int) and entry["earlier"] == []  # the run's first evaluation
    assert all(0.0 <= a <= 100.0 for a in entry["accuracy"])
    # the same lengths in parallel form give the same accuracies
    assert (
        main(
            [
                "synthetic",
                f"checkpoint={induction_run}",
                "lengths=64,128",
                "examples=8",
                "batch_size=4",
                "mode=parallel",
                "device=cpu",
                f"out={induction_run / 'parallel'}",
            ]
        )
        == 0
    )
    parallel = json.loads((induction_run / "parallel" / "eval" / "synthetic.json").read_text())[
        "induction_heads"
    ]
    assert parallel["accuracy"] == entry["accuracy"]


def test_evaluations_of_other_checkpoints_are_kept_oldest_first() -> None:
    old = {"step": 100, "accuracy": [90.0]}
    mid = {"step": 200, "accuracy": [95.0], "earlier": [old]}
    assert earlier_evaluations(None, 300) == []
    assert earlier_evaluations(mid, 300) == [old, {"step": 200, "accuracy": [95.0]}]
    assert earlier_evaluations(mid, 200) == [old]  # the same checkpoint again: replaced, not doubled
    unknown = {"accuracy": [50.0], "earlier": [mid]}  # a result written before steps were recorded
    assert [entry.get("step") for entry in earlier_evaluations(unknown, 300)] == [None, 200]


@pytest.mark.slow
def test_synthetic_refuses_other_runs_and_bad_keys(lm_run, induction_run, capsys) -> None:
    assert main(["synthetic", f"checkpoint={lm_run}", "device=cpu"]) == 2
    assert "needs a run of induction_heads or selective_copying" in capsys.readouterr().err
    assert main(["synthetic", f"checkpoint={induction_run}", "mode=sideways"]) == 2
    assert "mode must be auto, parallel or recurrent" in capsys.readouterr().err
    assert main(["synthetic", f"checkpoint={induction_run}", "lengths=64", "max_log2=8", "device=cpu"]) == 2
    assert "either lengths=" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["parallel", "recurrent"])
def test_selective_copying_accuracy_equals_a_direct_count(mode: str) -> None:
    from mamba_lm.data import build_datamodule

    config = {
        "kind": "selective_copying",
        "seqlen": 48,
        "vocab_size": 16,
        "num_data_tokens": 4,
        "val_examples": 6,
    }
    datamodule = build_datamodule(config, seed=0)
    model = tiny_lm("mamba", 16, seed=2)
    [result] = length_generalization(
        model, datamodule, [48], 4, 6, mode=mode, prefill=8, recurrent_batch_size=6
    )
    correct = labelled = 0
    with torch.no_grad():
        for batch in datamodule.val_loader(4):
            wanted = batch["labels"] != -100
            predictions = model(batch["input_ids"]).logits[..., :16].argmax(-1)
            correct += int((predictions[wanted] == batch["labels"][wanted]).sum())
            labelled += int(wanted.sum())
    assert labelled == 6 * 4 and (result.labelled, result.sequences) == (labelled, 6)
    assert result.correct == correct and result.mode == mode


def test_long_lengths_run_in_the_parallel_form_in_batch_chunks() -> None:
    """A token budget per forward pass sets the parallel batch (at least one sequence); the accuracies
    equal the recurrent form's."""
    from mamba_lm.data import build_datamodule
    from mamba_lm.evaluation.synthetic import parallel_batch

    assert parallel_batch(32, 1 << 20, 1 << 22) == 4 and parallel_batch(32, 64, 1 << 22) == 32
    assert parallel_batch(32, 1 << 20, 1000) == 1 and parallel_batch(32, 64, None) == 32
    config = {"kind": "induction_heads", "seqlen": 16, "eval_seqlens": [16, 32], "val_examples": 6}
    datamodule = build_datamodule(config, seed=0)
    asked = []
    loader = datamodule.val_loader
    datamodule.val_loader = lambda batch, seqlen=None: asked.append((seqlen, batch)) or loader(batch, seqlen)
    model = tiny_lm("mamba", 16, seed=3)
    chunked = length_generalization(model, datamodule, [16, 32], 4, 6, mode="parallel", parallel_tokens=35)
    assert asked == [(16, 2), (32, 1)] and [r.sequences for r in chunked] == [6, 6]
    stepped = length_generalization(model, datamodule, [16, 32], 4, 6, mode="recurrent", prefill=12)
    assert [r.correct for r in chunked] == [r.correct for r in stepped]


def test_parallel_fp32_scan_keeps_a_long_memory_as_fp64_does() -> None:
    """Long test lengths are scored in the parallel form in fp32. A slow channel (dt ~ 1.7e-5 after a
    first step with dt = 5 that writes the input) still carries the first input after 2^14 steps, and fp32
    stays within 2e-3 (relative) of fp64 there: exp(dt A) near 1 is rounded to steps of 2^-24, a bias of
    up to 2^-24 / |dt A| in the decay rate (0.35% here), far below what forgetting a token would cost."""
    dim, dstate, seqlen = 8, 16, 1 << 14
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(1, dim, seqlen, generator=generator)
    delta = torch.full((1, dim, seqlen), -11.0)
    delta[..., 0] = 5.0  # softplus: dt = 5 at the first step, 1.7e-5 afterwards
    A = -torch.arange(1, dstate + 1, dtype=torch.float32).repeat(dim, 1)  # S4D-Real, Mamba's init
    B, C = torch.randn(2, 1, dstate, seqlen, generator=generator)
    fp32 = selective_scan_fn(u, delta, A, B, C, delta_softplus=True)[..., -1].double()
    fp64 = selective_scan_fn(*(t.double() for t in (u, delta, A, B, C)), delta_softplus=True)[..., -1]
    u[..., 0] += 1.0
    changed = selective_scan_fn(u, delta, A, B, C, delta_softplus=True)[..., -1].double()
    signal = (fp32 - changed).abs().min()
    assert signal > 0.1  # every channel still remembers its first input 2^14 - 1 steps later
    assert (fp32 - fp64).abs().max() < 2e-3 * fp64.abs().max() < signal
