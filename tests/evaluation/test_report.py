"""The report renders runs side by side, with its plots, from metrics.jsonl and eval/*.json files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mamba_lm.evaluation.published import lra_average
from mamba_lm.evaluation.report import build_report
from mamba_lm.evaluation.report.runs import read_metrics
from mamba_lm.evaluation.results import load_results, update_results
from PIL import Image


def make_run(root: Path, name: str, losses: list[float], model: dict) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(json.dumps({"model": model, "seed": 0}))  # JSON is valid YAML
    with open(run / "metrics.jsonl", "w") as f:
        for step, loss in enumerate(losses, start=1):
            row = {"step": step * 10, "loss": loss, "lr": 1e-3, "tokens_per_s": 1000.0 + step}
            if step % 2 == 0:
                row["val_loss"] = loss + 0.1
            f.write(json.dumps(row) + "\n")
    return run


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    mamba = make_run(tmp_path, "mamba", [5.0, 4.0, 3.5, 3.2], {"arch": "mamba", "n_layer": 2, "d_model": 64})
    transformer = make_run(
        tmp_path, "transformer", [5.1, 4.3, 3.9, 3.7], {"arch": "transformer", "n_layer": 2, "d_model": 64}
    )
    for run, ppl, acc in ((mamba, 24.5, 0.31), (transformer, 40.25, 0.27)):
        update_results(run, "perplexity", {"embedded/val/blocks": {"perplexity": ppl, "tokens": 4096}})
        update_results(
            run,
            "harness",
            {
                "lambada_openai": {"acc": acc, "perplexity": ppl},
                "hellaswag": {"acc": 0.2, "acc_norm": acc},
                "my_local_task": {"acc": 0.5, "acc_stderr": 0.1},
                "_meta": {"limit": 10},
            },
        )
        update_results(run, "lra", {"listops": {"accuracy": 100 * acc, "quick": True}})
        update_results(
            run, "synthetic", {"induction_heads": {"lengths": [64, 128, 256], "accuracy": [100, 99.0, acc]}}
        )
    return mamba, transformer


def test_report_renders_markdown_html_and_plots(two_runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    markdown_path, html_path = build_report(list(two_runs), out)
    markdown = markdown_path.read_text()
    html = html_path.read_text()

    # every section, both runs, the published rows
    for heading in (
        "Loss curves",
        "Perplexity",
        "Zero-shot downstream",
        "Long Range Arena",
        "induction_heads",
    ):
        assert heading in markdown and heading in html
    assert "| mamba | mamba 2x64 | 40 |" in markdown
    assert "| transformer |" in markdown
    assert "24.50" in markdown and "40.25" in markdown  # perplexities
    assert "Mamba-130M (paper)" in markdown and "S4 (updated) (published)" in markdown
    assert "31.0" in markdown  # lambada acc 0.31 shown in %
    assert "my_local_task acc" in markdown and "acc_stderr" not in markdown
    assert "limit 10" in markdown
    assert "2^6" in markdown and "2^8" in markdown
    # best val loss of mamba = min(4.0, 3.2) + 0.1
    assert "3.3000" in markdown

    # the plots exist, are real PNGs with content, and are referenced by both formats
    for png in ("loss_curves.png", "synthetic_induction_heads.png"):
        assert f"({png})" in markdown and f"src='{png}'" in html
        with Image.open(out / png) as image:
            assert image.format == "PNG"
            assert image.size[0] > 300 and image.size[1] > 200
            assert len(image.convert("L").getcolors(maxcolors=1 << 16) or []) > 10  # not a blank canvas


def test_report_without_eval_results_has_only_training_sections(tmp_path: Path) -> None:
    run = make_run(tmp_path, "only_training", [3.0, 2.0], {"arch": "mamba", "n_layer": 1, "d_model": 8})
    markdown_path, _ = build_report([run], tmp_path / "out")
    markdown = markdown_path.read_text()
    assert "Loss curves" in markdown
    assert "Perplexity" not in markdown and "Long Range Arena" not in markdown


def test_report_bad_inputs_name_the_cause(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one run folder"):
        build_report([], tmp_path / "out")
    with pytest.raises(ValueError, match="does not exist"):
        build_report([tmp_path / "missing"], tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="neither metrics.jsonl nor eval"):
        build_report([empty], tmp_path / "out")


def test_metrics_reader_skips_a_truncated_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 2.0}]
    path.write_text('{"step": 1, "lo\n{"step": 2, "loss": 2.0}\n')
    with pytest.raises(ValueError, match="metrics.jsonl:1"):
        read_metrics(path)


def test_results_update_merges_and_writes_strict_json(tmp_path: Path) -> None:
    update_results(tmp_path, "lra", {"listops": {"accuracy": 40.0}})
    update_results(tmp_path, "lra", {"text": {"accuracy": math.nan}, "listops": {"accuracy": 41.0}})
    assert load_results(tmp_path, "lra") == {"listops": {"accuracy": 41.0}, "text": {"accuracy": None}}
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["lra.json"]  # no temporary file left
    with pytest.raises(ValueError, match="unknown result kind"):
        update_results(tmp_path, "nonsense", {})


def test_lra_average_matches_the_published_rows() -> None:
    transformer = {
        "listops": 36.37,
        "text": 64.27,
        "retrieval": 57.46,
        "image": 42.44,
        "pathfinder": 71.40,
        "pathx": None,
    }
    assert lra_average(transformer) == pytest.approx(53.66, abs=0.005)
    assert lra_average({"listops": 50.0}) is None
