"""Long Range Arena: quick mode trains a tiny classifier through train.py and evaluates it end to end;
the table puts our accuracies beside the published rows; LM runs are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from evaluation_parts import REPO_ROOT, subprocess_env
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.lra import quick_tasks, quick_train, training_dtype
from mamba_lm.evaluation.report.tables import lra_table
from mamba_lm.evaluation.results import load_results

from mamba_lm.trainer import list_checkpoints


@pytest.mark.slow
def test_quick_mode_trains_and_evaluates_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "lra_quick"
    command = [
        sys.executable,
        "-m",
        "evaluation",
        "lra",
        "quick=true",
        "tasks=listops",
        f"out={out}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "device=cpu",
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=subprocess_env()
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "listops: " in done.stdout and "% of 100 test examples" in done.stdout
    assert "S4 (updated) (published)" in done.stdout and "Quick mode" in done.stdout

    run = out / "listops"
    assert (run / "checkpoints").is_dir() and (run / "metrics.jsonl").is_file()
    entry = load_results(run, "lra")["listops"]
    assert entry["examples"] == 100 and entry["split"] == "test" and entry["quick"] is True
    assert entry["model"] == "s4d" and entry["experiment"] == "lra/quick/listops"
    trained = max(int(folder.name.removeprefix("step_")) for folder in (run / "checkpoints").glob("step_*"))
    assert entry["step"] == trained  # the newest checkpoint is the one evaluated
    assert 0.0 <= entry["accuracy"] <= 100.0


def test_table_has_our_rows_and_the_published_ones() -> None:
    table = lra_table({"mamba": {"listops": 41.5, "image": 80.25}}, quick_tasks={"listops"})
    assert table.header == ["model", "ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X", "avg"]
    assert table.rows[0] == ["mamba", "41.50", "–", "–", "80.25", "–", "–", "–"]
    assert table.rows[1][0] == "Transformer (LRA paper) (published)"
    assert table.rows[1][-2:] == ["fail", "53.66"] and table.rows[2][-1] == "86.09"
    assert "Quick mode" in table.to_markdown() and "listops" in table.caption


def test_quick_configs_exist_for_the_generated_tasks() -> None:
    assert {"listops", "pathfinder"} <= set(quick_tasks())


@pytest.mark.slow
def test_lra_refuses_language_model_runs_and_bad_usage(
    lm_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lra", str(lm_run), "device=cpu"]) == 2
    assert "not a sequence classifier" in capsys.readouterr().err
    assert main(["lra"]) == 2
    assert "lra needs run folders" in capsys.readouterr().err
    assert main(["lra", "quick=true", "tasks=text", "out=unused"]) == 2
    assert "no quick experiment for LRA task 'text'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_folder_is_evaluated_at_its_newest_and_its_best_validation_checkpoint(tmp_path: Path) -> None:
    """trainer.keep_best keeps the best validation's checkpoint beside the newest; ``lra`` evaluates both
    and keeps both in eval/lra.json, the newest on top. An lr of 1e-12 and LayerNorm (BatchNorm's running
    statistics would move) leave the validation accuracy flat: the first validation (step 5) stays the
    best, as later ties do not replace it."""
    run = tmp_path / "listops"
    overrides = ["trainer.max_steps=15", "trainer.eval_every=5", "trainer.save_every=5"]
    overrides += ["trainer.keep_last=1", "optim.lr=1e-12", "optim.param_groups=[]", "model.norm=layer"]
    overrides.append(f"data.cache_dir={tmp_path / 'cache'}")
    quick_train("listops", run, overrides)
    assert [folder.name for folder in list_checkpoints(run)] == ["step_00000015", "step_00000005"]

    assert main(["lra", str(run), "device=cpu"]) == 0

    entry = load_results(run, "lra")["listops"]
    assert entry["step"] == 15 and [earlier["step"] for earlier in entry["earlier"]] == [5]
    assert entry["dtype"] == "float32"  # dtype=auto on the CPU
    assert entry["earlier"][0]["accuracy"] == entry["accuracy"]  # the same weights, to 1e-12
    assert main(["lra", str(run), "device=cpu", "best=false"]) == 0  # again, newest only: both stay
    assert [earlier["step"] for earlier in load_results(run, "lra")["listops"]["earlier"]] == [5]


def test_auto_evaluates_a_run_in_the_precision_it_trained_in() -> None:
    """S4's LRA runs train and test in fp32: on a GPU, dtype=auto must not put an fp32 run under bf16
    autocast; a bf16 or fp16 run is tested in its own dtype there, and everything in fp32 on the CPU."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert training_dtype({"trainer": {"precision": "fp32"}}, cuda) == torch.float32
    assert training_dtype({"trainer": {"precision": "fp16"}}, cuda) == torch.float16
    assert training_dtype({"trainer": {"precision": "bf16"}}, cpu) == torch.float32
    with mock.patch("torch.cuda.is_bf16_supported", return_value=True):
        assert training_dtype({"trainer": {"precision": "bf16"}}, cuda) == torch.bfloat16
        assert training_dtype({}, cuda) == torch.bfloat16  # precision auto: bf16 where supported
