"""``python -m evaluation report mode=reproduction``: docs/reproduction.md from the reproduction run folders
(benchmarks/reproduce.py's names), with claims not yet run listed as such."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from mamba_lm.evaluation.report.reproduction import _cells, build_reproduction
from mamba_lm.evaluation.results import update_results

MAMBA_TINY = {"arch": "mamba", "d_model": 16, "n_layer": 2, "vocab_size": 16, "d_state": 4}
TRANSFORMER_TINY = {"arch": "transformer", "d_model": 16, "n_layer": 1, "n_head": 2, "vocab_size": 16}


def make_run(
    root: Path, name: str, model: dict, metrics: list[dict], max_steps: int, seqlen: int = 32
) -> Path:
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    config = {"model": model, "trainer": {"max_steps": max_steps}, "data": {"seqlen": 32}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"experiment=x/{name}", "resume=auto"]))
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics))
    return run


def test_claims_without_runs_are_listed_as_not_run(tmp_path):
    (tmp_path / "repro").mkdir()
    text = build_reproduction(tmp_path / "repro", tmp_path / "docs").read_text()
    for title in ("Induction heads", "Selective copying", "Long Range Arena", "Mamba vs Transformer++"):
        assert title in text
    assert text.count("Not run yet") == 4


def test_synthetic_and_scaling_sections_show_ours_beside_the_paper(tmp_path):
    root = tmp_path / "repro"
    rows = [{"step": 100, "loss": 2.0}, {"step": 200, "loss": 0.1}]
    heads = make_run(root, "induction_heads", MAMBA_TINY, rows, max_steps=204800)
    entry = {"lengths": [64, 256, 1024], "accuracy": [100.0, 100.0, 99.5], "train_length": 256}
    update_results(heads, "synthetic", {"induction_heads": entry})
    copying = make_run(root, "selective_copying_s4d", MAMBA_TINY, rows, max_steps=400000)
    update_results(copying, "synthetic", {"selective_copying": {"lengths": [4096], "accuracy": [17.0]}})
    for family, model in (("mamba", MAMBA_TINY), ("transformer", TRANSFORMER_TINY)):
        evals = [{"step": s, "tokens": s * 64, "val_loss": 5.0 - s / 100} for s in (100, 200)]
        make_run(root, f"scaling_{family}_s", model, evals, max_steps=200)

    text = build_reproduction(root, tmp_path / "docs").read_text()

    assert "ours: Mamba (200 steps of the paper's 204,800)" in text
    assert "| 2^10 | 99.5 | 100.0 |" in text  # ours beside Table 11's Mamba column
    assert "No gate / S4" in text and "18.3" in text and "17.0" in text
    assert "python train.py experiment=x/induction_heads hydra.run.dir=outputs/repro/induction_heads" in text
    assert (tmp_path / "docs" / "induction_heads.png").is_file()
    assert (tmp_path / "docs" / "scaling.png").is_file()
    scaling = text[text.index("Mamba vs Transformer++") :]
    assert "| s |" in scaling and "3.0000" in scaling  # the last validation loss of each family
    assert "not run" in scaling  # sizes m and l have no runs
    assert "Not the Pile" in scaling
    assert "Size s at step 200 (same tokens, same batches): Mamba 3.0000, Transformer++ 3.0000" in scaling


def test_the_report_command_has_a_reproduction_mode(tmp_path):
    (tmp_path / "repro").mkdir()
    command = [sys.executable, "-m", "mamba_lm.evaluation", "report", "mode=reproduction"]
    command += [f"root={tmp_path / 'repro'}", f"out={tmp_path / 'docs'}"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "docs" / "reproduction.md").is_file()
    bad = subprocess.run(command[:4] + ["mode=paper"], capture_output=True, text=True)
    assert bad.returncode == 2 and "mode must be one of runs, reproduction" in bad.stderr


def test_every_evaluated_checkpoint_has_a_column_and_the_status_names_the_step(tmp_path):
    """A constant-lr run evaluated at two checkpoints shows both; a requirement met only at the earlier one
    is reported as met at that step, not at the last."""
    root = tmp_path / "repro"
    rows = [{"step": 100, "loss": 2.0}, {"step": 200, "loss": 0.1}]
    lengths = [2**k for k in range(6, 21)]
    heads = make_run(root, "induction_heads", MAMBA_TINY, rows, max_steps=204800)
    # the step-150 checkpoint evaluated after the step-200 one: the table still orders them by step
    latest = {"lengths": lengths, "accuracy": [100.0] * 14 + [94.1], "step": 200}
    earlier = {"lengths": lengths, "accuracy": [100.0] * 15, "step": 150, "earlier": [latest]}
    update_results(heads, "synthetic", {"induction_heads": earlier})
    fixed = make_run(root, "induction_heads_trigger5", MAMBA_TINY, rows, max_steps=204800)
    chance = {"lengths": lengths, "accuracy": [6.0] * 15, "step": 200}
    update_results(fixed, "synthetic", {"induction_heads": chance})

    text = build_reproduction(root, tmp_path / "docs").read_text()

    status = next(line for line in text.splitlines() if line.startswith("| Induction heads: Mamba"))
    assert "lowest 94.1% over 15 lengths at step 200 of the paper's 204,800" in status
    assert "at step 150 of the same run" in status and "| met at step 150, not at the last |" in status
    header = next(line for line in text.splitlines() if line.startswith("| test length"))
    assert (
        "ours: Mamba (step 150 of the paper's 204,800) | ours: Mamba (step 200 of the paper's 204,800)"
        in header
    )
    assert "ours: Mamba, first trigger at 5 (step 200" in header and header.count("paper: Mamba") == 1
    assert "| 2^20 | 100.0 | 94.1 | 6.0 | 100.0 |" in text


def test_selective_copying_lists_the_logged_lr_of_each_stretch_that_is_not_the_papers(tmp_path):
    root = tmp_path / "repro"
    two_phase = [{"step": s, "loss": 1.0, "lr": 1e-3} for s in (100, 200)] + [{"step": 300, "lr": 1e-4}]
    mamba = make_run(root, "selective_copying", MAMBA_TINY, two_phase, max_steps=400000)
    update_results(mamba, "synthetic", {"selective_copying": {"lengths": [4096], "accuracy": [93.0]}})
    papers_lr = [{"step": s, "loss": 1.0, "lr": 1e-4} for s in (100, 200)]
    s4d = make_run(root, "selective_copying_s4d", MAMBA_TINY, papers_lr, max_steps=400000)
    update_results(s4d, "synthetic", {"selective_copying": {"lengths": [4096], "accuracy": [20.0]}})

    text = build_reproduction(root, tmp_path / "docs").read_text()

    assert "selective_copying: lr 0.001 at steps 100-200, then 0.0001 at steps 300-300" in text
    assert "selective_copying_s4d: lr" not in text


def test_commands_show_the_last_launch_and_each_evaluated_checkpoint(tmp_path):
    """A key given twice shows its last value (the one Hydra applied), a constant-lr run changed between
    launches lists its logged lr stretches, and each evaluation command names its checkpoint and lengths."""
    root = tmp_path / "repro"
    two_phase = [{"step": 100, "loss": 1.0, "lr": 1e-3}, {"step": 200, "lr": 1e-4}]
    mamba = make_run(root, "selective_copying", MAMBA_TINY, two_phase, max_steps=400000)
    overrides = ["experiment=x/selective_copying", "optim.lr=1e-3", "optim.lr=1e-4", "resume=auto"]
    (mamba / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    latest = {"lengths": [4096], "accuracy": [99.9], "step": 200}
    update_results(
        mamba, "synthetic", {"selective_copying": {**latest, "earlier": [{**latest, "step": 100}]}}
    )
    heads = make_run(root, "induction_heads_attention", MAMBA_TINY, two_phase, max_steps=409600)
    short = {"lengths": [2**k for k in range(6, 17)], "accuracy": [50.0] * 11, "step": 200}
    update_results(heads, "synthetic", {"induction_heads": short})

    text = build_reproduction(root, tmp_path / "docs").read_text()

    assert "# steps 100-100: optim.lr=0.001\n# steps 200-200: optim.lr=0.0001\n" in text
    assert "experiment=x/selective_copying optim.lr=1e-4 hydra.run.dir" in text
    assert "checkpoint=outputs/repro/selective_copying/checkpoints/step_00000100\n" in text
    assert "checkpoint=outputs/repro/selective_copying\n" in text
    assert "checkpoint=outputs/repro/induction_heads_attention max_log2=16\n" in text
    assert "# steps" not in text.split("## Induction heads")[1].split("## Selective")[0]  # scheduled lr: no


def test_an_lra_run_in_training_shows_its_progress_and_validation_accuracy(tmp_path):
    root = tmp_path / "repro"
    rows = [{"step": 50, "loss": 2.0}, {"step": 100, "loss": 1.5, "val_accuracy": 0.393}, {"step": 120}]
    run = make_run(root, "lra_s4_listops", {"arch": "classifier"}, rows, max_steps=76800)

    text = build_reproduction(root, tmp_path / "docs").read_text()

    status = next(line for line in text.splitlines() if line.startswith("| LRA ListOps"))
    assert "in training: 120 of 76,800 steps, validation 39.3% at step 100 | - |" in status
    assert "| lra_s4_listops | listops | 120 steps of the paper's 76,800 | generated" in text
    assert "| 39.3 (step 100) | in training | 59.60 |" in text
    finished = make_run(root, "lra_mamba_pathfinder_mean", {"arch": "classifier"}, rows[:2], max_steps=100)
    text = build_reproduction(root, tmp_path / "docs").read_text()
    assert "| 39.3 (step 100) | trained, not tested yet | 94.20 |" in text  # at its max_steps, no test yet
    finished.joinpath("metrics.jsonl").unlink()
    update_results(run, "lra", {"listops": {"accuracy": 58.1, "source": "generate", "generated": False}})
    text = build_reproduction(root, tmp_path / "docs").read_text()
    assert "| generated (not LRA's release) | 39.3 (step 100) | 58.10 |" in text  # ListOps drawn here
    assert "| 58.10 (test, last checkpoint) | met |" in text
    assert "python -m evaluation lra outputs/repro/lra_s4_listops" in text


def test_an_lra_run_shows_its_best_validation_and_the_step_it_resumes_from(tmp_path):
    """A piece that stopped between two saves logged steps its newest checkpoint lacks; an earlier
    validation that scored higher than the latest is shown beside it."""
    root = tmp_path / "repro"
    rows = [
        {"step": 100, "val_accuracy": 0.541},
        {"step": 200, "val_accuracy": 0.41},
        {"step": 260, "loss": 1.2},
    ]
    run = make_run(root, "lra_s4_listops", {"arch": "classifier"}, rows, max_steps=76800)
    (run / "checkpoints" / "step_00000200").mkdir(parents=True)

    text = build_reproduction(root, tmp_path / "docs").read_text()

    status = next(line for line in text.splitlines() if line.startswith("| LRA ListOps"))
    assert "in training: 260 of 76,800 steps, saved at step 200, validation 41.0% at step 200" in status
    assert "(best 54.1% at step 100) | - |" in status
    assert "| 260 steps of the paper's 76,800, saved at step 200 |" in text
    assert "| 41.0 (step 200; best 54.1 at step 100) | in training |" in text
    assert "![LRA validation accuracy against training step](lra.png)" in text
    assert (tmp_path / "docs" / "lra.png").stat().st_size > 1000
    update_results(run, "lra", {"listops": {"accuracy": 51.2, "source": "generate", "step": 200}})
    text = build_reproduction(root, tmp_path / "docs").read_text()
    status = next(line for line in text.splitlines() if line.startswith("| LRA ListOps"))
    assert "test 51.20% at step 200 (not the result: the lr had not decayed) | - |" in status
    assert "| 51.20 at step 200 (mid-run) | 59.60 |" in text
    update_results(run, "lra", {"listops": {"accuracy": 58.1, "source": "generate", "step": 76800}})
    text = build_reproduction(root, tmp_path / "docs").read_text()
    assert "| 58.10 (test, last checkpoint) | met |" in text and "| 58.10 | 59.60 |" in text
    last = {"accuracy": 55.0, "source": "generate", "step": 76800}
    best = {"accuracy": 57.0, "source": "generate", "step": 100}  # the best validation's checkpoint
    update_results(run, "lra", {"listops": {**last, "earlier": [best]}})
    text = build_reproduction(root, tmp_path / "docs").read_text()
    status = next(line for line in text.splitlines() if line.startswith("| LRA ListOps"))
    assert "| 55.00 (test, last checkpoint); 57.00 at the best validation (step 100) |" in status
    assert status.endswith("| met at the best-validation checkpoint, not at the last |")
    assert "| 55.00; 57.00 at the best validation (step 100) | 59.60 |" in text


def test_budgeted_and_generated_lra_runs_name_their_deviations(tmp_path):
    root = tmp_path / "repro"
    rows = [{"step": 100, "loss": 0.7, "val_accuracy": 0.5}]
    make_run(root, "lra_s4_pathfinder", {"arch": "classifier"}, rows, max_steps=50000)
    make_run(root, "lra_mamba_pathfinder", {"arch": "classifier"}, rows, max_steps=50000)

    text = build_reproduction(root, tmp_path / "docs").read_text()

    assert "| lra_s4_pathfinder | pathfinder | 100 of 50,000 planned steps (the paper's 500,000) |" in text
    assert "lra_s4_pathfinder: 50,000 planned steps with the lr schedule laid over them" in text
    assert "| lra_mamba_pathfinder | pathfinder | 100 of 50,000 planned steps (the paper's 500,000) |" in text
    assert "lra_mamba_pathfinder: 50,000 planned steps with the lr schedule laid over them, not S4's" in text
    assert "a different task from LRA's" in text and "The Mamba paper reports no LRA numbers" in text
    assert "lra_mamba_pathfinder_mean" not in text

    # the mean-pooling Mamba Pathfinder row says how it differs
    make_run(root, "lra_mamba_pathfinder_mean", {"arch": "classifier"}, rows, max_steps=12500)
    text = build_reproduction(root, tmp_path / "docs").read_text()
    row = "| lra_mamba_pathfinder_mean | pathfinder | 100 of 12,500 planned steps (the paper's 500,000) |"
    assert row in text
    assert "lra_mamba_pathfinder_mean: the Mamba Pathfinder row with the mean over positions pooled" in text


def test_sections_whose_run_folders_are_gone_are_carried_over_from_the_previous_report(tmp_path):
    """Regenerating where only some run folders exist (a new machine) keeps the published sections and
    status rows of the others, and says which were carried; a section with a run folder is rebuilt."""
    first, docs = tmp_path / "first", tmp_path / "docs"
    heads = make_run(first, "induction_heads", MAMBA_TINY, [{"step": 200, "loss": 0.1}], max_steps=204800)
    entry = {"lengths": [64, 256, 1024], "accuracy": [100.0, 100.0, 99.5], "train_length": 256, "step": 200}
    update_results(heads, "synthetic", {"induction_heads": entry})
    rows = [{"step": 100, "val_accuracy": 0.41}]
    make_run(first, "lra_s4_listops", {"arch": "classifier"}, rows, max_steps=76800)
    published = build_reproduction(first, docs).read_text()
    heads_section = published[published.index("## Induction heads") : published.index("## Selective")]
    heads_status = next(line for line in published.splitlines() if line.startswith("| Induction heads"))
    assert "| 2^10 | 99.5 | 100.0 |" in heads_section and "Carried over" not in published

    later = tmp_path / "later"  # a new machine: only the LRA run, further on
    rows = [{"step": 100, "val_accuracy": 0.41}, {"step": 5000, "val_accuracy": 0.55}]
    make_run(later, "lra_s4_listops", {"arch": "classifier"}, rows, max_steps=76800)
    text = build_reproduction(later, docs).read_text()

    assert heads_section in text and heads_status in text.splitlines()
    assert "55.0 (step 5,000)" in text and "41.0 (step 100)" not in text  # the LRA section is rebuilt
    start = text.index("Carried over")
    carried = text[start : text.index("\n", start)]
    assert "Induction heads (Table 11)" in carried and "Long Range Arena" not in carried
    assert build_reproduction(later, docs).read_text() == text  # carrying again changes nothing


def test_a_rebuilt_section_keeps_the_rows_commands_and_deviations_of_its_absent_runs(tmp_path):
    """A new run joins a section whose other runs' folders are gone: the section is rebuilt from the new run
    and keeps, from the previous report, the absent runs' table rows, command lines (with their lr comments)
    and the deviations naming them; the status row of the claim, about the absent runs, is kept too."""
    first, docs = tmp_path / "first", tmp_path / "docs"
    two_phase = [{"step": s, "loss": 1.0, "lr": 1e-3} for s in (100, 200)] + [{"step": 300, "lr": 1e-4}]
    mamba = make_run(first, "selective_copying", MAMBA_TINY, two_phase, max_steps=400000)
    update_results(mamba, "synthetic", {"selective_copying": {"lengths": [4096], "accuracy": [99.9]}})
    s4d = make_run(first, "selective_copying_s4d", MAMBA_TINY, two_phase[:2], max_steps=400000)
    update_results(s4d, "synthetic", {"selective_copying": {"lengths": [4096], "accuracy": [38.3]}})
    published = build_reproduction(first, docs).read_text()
    status = next(line for line in published.splitlines() if line.startswith("| Selective copying"))
    assert "Mamba 99.9%, S4D 38.3%" in status

    later = tmp_path / "later"  # a new machine: only the new Mamba-block-with-S4D run
    block = make_run(later, "selective_copying_mamba_s4d", MAMBA_TINY, two_phase[:2], max_steps=400000)
    update_results(block, "synthetic", {"selective_copying": {"lengths": [4096], "accuracy": [55.0]}})
    text = build_reproduction(later, docs).read_text()

    section = text[text.index("## Selective copying") : text.index("## Long Range Arena")]
    assert (
        "| selective_copying_mamba_s4d | Mamba / S4 | 200 steps of the paper's 400,000 | 55.0 | 56.4 |"
        in section
    )
    assert "| selective_copying | Mamba / S6 | 300 steps of the paper's 400,000 | 99.9 | 99.8 |" in section
    assert (
        "| selective_copying_s4d | No gate / S4 | 200 steps of the paper's 400,000 | 38.3 | 18.3 |" in section
    )
    runs = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| selective")]
    assert runs == ["selective_copying", "selective_copying_mamba_s4d", "selective_copying_s4d"]  # run order
    assert "# steps 100-200: optim.lr=0.001\n# steps 300-300: optim.lr=0.0001\npython train.py " in section
    for name in ("selective_copying", "selective_copying_s4d", "selective_copying_mamba_s4d"):
        assert f"hydra.run.dir=outputs/repro/{name} resume=auto" in section
        assert f"python -m evaluation synthetic checkpoint=outputs/repro/{name}\n" in section + "\n"
    assert "selective_copying_mamba_s4d: lr 0.001 at steps 100-200" in section
    carried = next(line for line in section.splitlines() if line.startswith("- (carried over)"))
    assert "selective_copying: lr 0.001 at steps 100-200, then 0.0001 at steps 300-300" in carried
    assert status in text.splitlines()  # the required claim is about the absent runs
    assert "carried over from the previous version, their folders absent" in text
    assert "selective_copying, selective_copying_s4d." in text
    assert build_reproduction(later, docs).read_text() == text  # carrying again changes nothing


def test_an_lr_sweep_shows_each_familys_lowest_finished_loss_and_every_lr_tried(tmp_path):
    root = tmp_path / "repro"
    losses = {
        ("mamba", ""): 3.0,
        ("mamba", "_lr4e-3"): 2.5,  # the lowest: shown
        ("mamba", "_lr8e-3"): 1.0,  # 2.0 at its last step, lower still, but unfinished: not chosen
        ("transformer", ""): 2.4,
        ("transformer", "_lr4e-3"): 2.6,
    }
    for (family, suffix), loss in losses.items():
        model = MAMBA_TINY if family == "mamba" else TRANSFORMER_TINY
        last = 100 if suffix == "_lr8e-3" else 200
        evals = [{"step": s, "tokens": s * 64, "val_loss": loss + (200 - s) / 100} for s in (100, last)]
        run = make_run(root, f"scaling_{family}_s{suffix}", model, evals, max_steps=200)
        lr = float(suffix.removeprefix("_lr")) if suffix else 2e-3
        config = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**config, "optim": {"lr": lr}}))

    text = build_reproduction(root, tmp_path / "docs").read_text()

    scaling = text[text.index("Mamba vs Transformer++") :]
    row = next(line for line in scaling.splitlines() if line.startswith("| s |"))
    assert "| 0.004 |" in row and "2.5000" in row  # Mamba at its best finished lr
    assert "| 0.002 |" in row and "2.4000" in row  # Transformer++ at the base lr
    assert "Mamba 2.5000 (peak lr 0.004), Transformer++ 2.4000 (peak lr 0.002)" in scaling
    assert "| size | family | lr 0.002 | lr 0.004 | lr 0.008 |" in scaling
    assert "| s | Mamba | 3.0000 | 2.5000 (shown) | 2.0000 (step 100 of 200) |" in scaling
    assert "| s | Transformer++ | 2.4000 (shown) | 2.6000 | - |" in scaling
    for name in (
        "scaling_mamba_s",
        "scaling_mamba_s_lr4e-3",
        "scaling_mamba_s_lr8e-3",
        "scaling_transformer_s_lr4e-3",
    ):
        assert f"hydra.run.dir=outputs/repro/{name} " in scaling  # every run's command is listed


def _scaling_pair(root: Path, size: str, loss: float) -> None:
    for family, model in (("mamba", MAMBA_TINY), ("transformer", TRANSFORMER_TINY)):
        evals = [{"step": s, "tokens": s * 64, "val_loss": loss + (200 - s) / 100} for s in (100, 200)]
        run = make_run(root, f"scaling_{family}_{size}", model, evals, max_steps=200)
        config = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**config, "optim": {"lr": 2e-3}}))


def test_a_scaling_size_whose_runs_are_gone_keeps_its_row_and_its_finished_status(tmp_path):
    """The scaling table's rows are sizes: a size none of whose runs is under the root keeps its published
    row (not "not run") and still counts as finished in the status table; a column the previous table lacked
    reads '-'; the sizes present are rebuilt."""
    first, docs = tmp_path / "first", tmp_path / "docs"
    for size, loss in (("s", 3.0), ("m", 2.5), ("l", 2.25)):
        _scaling_pair(first, size, loss)
    published = build_reproduction(first, docs).read_text()
    status = next(line for line in published.splitlines() if line.startswith("| Scaling"))
    assert "both finished at 3 of 3 sizes (s, m, l) | met |" in status
    old_l_row = next(line for line in published.splitlines() if line.startswith("| l |"))
    header = next(line for line in published.splitlines() if line.startswith("| size | Mamba: params"))
    dropped = _cells(header).index("Mamba: peak lr")  # an older report, before the column existed
    start = published.index("## Mamba vs Transformer++")
    lines = [
        "| " + " | ".join(c for i, c in enumerate(_cells(line)) if i != dropped) + " |"
        if line.startswith("|")
        else line
        for line in published[start:].splitlines()
    ]
    (docs / "reproduction.md").write_text(published[:start] + "\n".join(lines) + "\n")
    assert "Mamba: peak lr" not in (docs / "reproduction.md").read_text()

    later = tmp_path / "later"  # a new machine: sizes s and m trained again, size l's folders gone
    _scaling_pair(later, "s", 2.75)
    _scaling_pair(later, "m", 2.5)
    text = build_reproduction(later, docs).read_text()

    scaling = text[text.index("## Mamba vs Transformer++") :]
    rows = [line for line in scaling.splitlines() if line.startswith(("| s |", "| m |", "| l |"))]
    assert [row[:5] for row in rows[:3]] == ["| s |", "| m |", "| l |"]
    assert "2.7500" in rows[0] and "not run" not in scaling.split("Commands:")[0]
    l_cells = _cells(rows[2])
    assert l_cells[2] == "-" and l_cells[1:2] + l_cells[3:] == [
        c for i, c in enumerate(_cells(old_l_row)) if i not in (0, dropped)
    ]
    commands = scaling[scaling.index("Commands:") :]
    carried_command = commands.index("hydra.run.dir=outputs/repro/scaling_mamba_l resume=auto")
    assert commands.index("scaling_mamba_m resume=auto") < carried_command  # training commands first,
    assert carried_command < commands.index("python -m evaluation report")  # then the evaluation
    assert "both finished at 3 of 3 sizes (s, m, l) | met |" in text
    assert "scaling_mamba_l, scaling_transformer_l" in text  # the intro names the carried runs
    assert "Carried from the previous report, their run folders gone: Mamba l, Transformer++ l." in text
    assert "a hollow marker" in text  # the plot shows their final points
    assert build_reproduction(later, docs).read_text() == text  # carrying again changes nothing


def test_a_family_trained_again_at_a_size_at_another_lr_replaces_only_its_own_carried_cells(tmp_path):
    """Size l's base folders are gone and Transformer++ l was trained again at another peak lr: its cells
    come from that run, Mamba l's stay as published, and both still count as finished."""
    first, docs = tmp_path / "first", tmp_path / "docs"
    for size, loss in (("s", 3.0), ("m", 2.5), ("l", 2.25)):
        _scaling_pair(first, size, loss)
    published = build_reproduction(first, docs).read_text()
    old_l = _cells(next(line for line in published.splitlines() if line.startswith("| l |")))

    later = tmp_path / "later"
    _scaling_pair(later, "s", 3.0)
    _scaling_pair(later, "m", 2.5)
    evals = [{"step": s, "tokens": s * 64, "val_loss": 2.0 + (200 - s) / 100} for s in (100, 200)]
    run = make_run(later, "scaling_transformer_l_lr1e-3", TRANSFORMER_TINY, evals, max_steps=200)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "optim": {"lr": 1e-3}}))
    text = build_reproduction(later, docs).read_text()

    l_cells = _cells(next(line for line in text.splitlines() if line.startswith("| l |")))
    assert l_cells[1:6] == old_l[1:6]  # Mamba l as published
    assert l_cells[7] == "0.001" and l_cells[10] == "2.0000"  # Transformer++ l from its new run
    assert "Carried from the previous report, their run folders gone: Mamba l." in text
    assert "both finished at 3 of 3 sizes (s, m, l) | met |" in text


def test_the_scaling_goal_compares_each_familys_best_finished_loss_at_every_size(tmp_path):
    """Fig. 4's claim (Mamba at or below Transformer++ at every size) is judged on each family's lowest
    finished loss over every peak lr tried, a size whose folders are gone on its published losses."""
    first, docs = tmp_path / "first", tmp_path / "docs"
    for size, loss in (("s", 3.0), ("m", 2.5), ("l", 2.25)):
        _scaling_pair(first, size, loss)
    evals = [{"step": s, "tokens": s * 64, "val_loss": 2.4 + (200 - s) / 100} for s in (100, 200)]
    make_run(first, "scaling_transformer_m_lr1e-3", TRANSFORMER_TINY, evals, max_steps=200)
    unfinished = [{"step": 100, "tokens": 6400, "val_loss": 1.0}]  # lower, but not finished: not counted
    make_run(first, "scaling_mamba_s_lr4e-3", MAMBA_TINY, unfinished, max_steps=200)

    text = build_reproduction(first, docs).read_text()

    goal = next(line for line in text.splitlines() if line.startswith("| Goal: Mamba"))
    assert _cells(goal)[1:] == [
        "Mamba minus Transformer++, each at its best peak lr tried: s +0.0000, m +0.1000, l +0.0000",
        "not met (Transformer++ lower at m)",
    ]
    later = tmp_path / "later"  # size l's folders gone: its published losses stand in
    _scaling_pair(later, "s", 3.0)
    _scaling_pair(later, "m", 2.5)
    text = build_reproduction(later, docs).read_text()
    goal = next(line for line in text.splitlines() if line.startswith("| Goal: Mamba"))
    assert _cells(goal)[1:] == [
        "Mamba minus Transformer++, each at its best peak lr tried: s +0.0000, m +0.0000, l +0.0000",
        "met",
    ]
