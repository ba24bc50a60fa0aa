"""Commands on a run folder written by train.py: perplexity agrees with the trainer's logged
validation loss; lm-eval runs on the run's checkpoint and tokenizer; the report renders the run's
curves and evaluation results; bad inputs give one-line errors that name the cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from local_tasks import expected_metrics, write_tasks
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.report.runs import read_metrics
from mamba_lm.evaluation.results import load_results
from mamba_lm.evaluation.text_tokenizer import TextTokenizer

from mamba_lm.trainer.checkpoint import load_model

pytestmark = pytest.mark.slow  # every test here uses a run trained by train.py (session fixtures)


def test_perplexity_agrees_with_the_trainers_validation_loss(lm_run: Path, capsys) -> None:
    logged = [row for row in read_metrics(lm_run / "metrics.jsonl") if "val_loss" in row][-1]
    # the trainer validated (up to eval_batches=4) batches of micro_batch_size=4 with the final weights
    assert main(["perplexity", f"checkpoint={lm_run}", "batch_size=4", "max_batches=4", "device=cpu"]) == 0
    assert "tokens/s" in capsys.readouterr().out
    entry = load_results(lm_run, "perplexity")["local/val/blocks"]
    assert entry["loss"] == pytest.approx(logged["val_loss"], rel=1e-5)
    assert entry["tokens"] == logged["val_count"] == 8 * 32  # validation.max_blocks=8 blocks of 32 targets
    assert entry["perplexity"] == pytest.approx(logged["val_ppl"], rel=1e-5)


def test_sliding_window_perplexity_scores_the_whole_split(lm_run: Path) -> None:
    assert (
        main(["perplexity", f"checkpoint={lm_run}", "stride=8", "context=32", "batch_size=4", "device=cpu"])
        == 0
    )
    entry = load_results(lm_run, "perplexity")["local/val/sliding-c32-s8"]
    assert entry["tokens"] == 8 * 33 - 1  # validation.max_blocks=8 blocks of 33 tokens, one stream
    assert entry["perplexity"] > 1.0 and entry["tokens_per_s"] > 0


def test_harness_on_a_run_folder(lm_run: Path, tmp_path: Path) -> None:
    docs = write_tasks(tmp_path / "tasks")
    assert (
        main(
            [
                "harness",
                f"checkpoint={lm_run}",
                "tasks=local_mc,local_cloze",
                f"include_path={tmp_path / 'tasks'}",
                "include_defaults=false",
                "bootstrap_iters=0",
                "batch_size=4",
                "device=cpu",
            ]
        )
        == 0
    )
    saved = load_results(lm_run, "harness")
    model, _ = load_model(lm_run)
    expected = expected_metrics(model, TextTokenizer.from_file(lm_run / "tokenizer.json"), docs)
    for task in ("local_mc", "local_cloze"):
        for metric, value in expected[task].items():
            assert saved[task][metric] == pytest.approx(value, rel=1e-4)
    assert saved["_meta"]["checkpoint"] == str(lm_run)


def test_report_of_real_runs(lm_run: Path, induction_run: Path, tmp_path: Path) -> None:
    main(["perplexity", f"checkpoint={lm_run}", "batch_size=4", "max_batches=2", "device=cpu"])
    main(["synthetic", f"checkpoint={induction_run}", "lengths=64", "examples=4", "device=cpu"])
    out = tmp_path / "report"
    assert main(["report", str(lm_run), str(induction_run), f"out={out}"]) == 0
    markdown = (out / "report.md").read_text()
    assert "## Perplexity" in markdown and "local/val/blocks" in markdown
    assert "Synthetic: induction_heads" in markdown
    assert "| mamba_tiny (mamba 2x64) |" in markdown  # the model summary from the run's config
    assert (out / "loss_curves.png").stat().st_size > 5000
    assert (out / "report.html").read_text().count("<table>") >= 3


def test_bad_inputs_give_one_line_errors(lm_run: Path, tmp_path: Path, capsys) -> None:
    no_checkpoints = tmp_path / "run_without_checkpoints"
    no_checkpoints.mkdir()
    shutil.copy(lm_run / "config.yaml", no_checkpoints)
    assert main(["perplexity", f"checkpoint={no_checkpoints}", "device=cpu"]) == 2
    assert "neither a run folder (with checkpoints/)" in capsys.readouterr().err

    assert main(["perplexity", f"checkpoint={tmp_path / 'missing'}"]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert main(["perplexity", f"checkpoint={lm_run}", "data=no_such_data", "device=cpu"]) == 2
    error = capsys.readouterr().err
    assert "unknown data config 'no_such_data'; configs/data/ has: code_corpus, embedded" in error

    other_model = tmp_path / "gpt2"
    other_model.mkdir()
    (other_model / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    (other_model / "model.safetensors").write_bytes(b"")
    assert main(["perplexity", f"checkpoint={other_model}", "device=cpu"]) == 2
    assert "holds a Hugging Face 'gpt2' model; only mamba, llama" in capsys.readouterr().err

    no_tokenizer = tmp_path / "copy_without_tokenizer"
    shutil.copytree(lm_run / "checkpoints", no_tokenizer / "checkpoints")
    shutil.copy(lm_run / "config.yaml", no_tokenizer)
    from mamba_lm.evaluation.loading import load_for_eval

    with pytest.raises(FileNotFoundError, match="no tokenizer.json found for checkpoint"):
        load_for_eval(no_tokenizer)
