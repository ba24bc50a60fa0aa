"""Evaluation reads a run folder through the trainer's public reader: the same metrics reader, the run
found from a checkpoint folder, results that record the step of the checkpoint scored, and imports of the
trainer at the top of each file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.loading import load_for_eval
from mamba_lm.evaluation.report import runs
from mamba_lm.evaluation.results import load_results, run_folder_of

from mamba_lm import trainer

EVALUATION = Path(__file__).resolve().parents[2] / "evaluation"
READERS = ("results.py", "loading.py", "perplexity.py", "report/runs.py", "commands/perplexity.py")


def test_the_report_reads_metrics_with_the_run_folders_one_reader() -> None:
    assert runs.read_metrics is trainer.read_metrics


@pytest.mark.parametrize("name", READERS)
def test_evaluation_imports_the_trainer_at_the_top_of_the_file(name: str) -> None:
    tree = ast.parse((EVALUATION / name).read_text())
    for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):
                assert "trainer" not in (node.module or ""), f"{name}:{node.lineno} imports inside a function"


@pytest.mark.slow
def test_perplexity_records_the_step_of_the_checkpoint_it_scored(lm_run: Path) -> None:
    (checkpoint,) = trainer.RunFolder(lm_run).step_folders()
    loaded = load_for_eval(checkpoint, require_tokenizer=True)  # the tokenizer is the run folder's copy
    assert loaded.step == 4 and loaded.checkpoint == checkpoint
    assert run_folder_of(checkpoint) == lm_run
    command = ["perplexity", f"checkpoint={checkpoint}", "batch_size=4", "max_batches=1", "device=cpu"]
    assert main(command) == 0
    entry = load_results(lm_run, "perplexity")["local/val/blocks"]
    assert entry["step"] == 4 and entry["checkpoint"] == str(checkpoint)
