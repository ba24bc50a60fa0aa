"""lm-eval end to end, offline: local tasks in lm-eval's YAML format on a tiny local dataset, the model
registered as ``mamba_lm`` and loaded from checkpoint folders (reference mamba_ssm layout, Hugging Face
layout); the harness's numbers equal log-likelihoods computed directly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lm_eval
import mamba_lm.evaluation  # noqa: F401  (registers mamba_lm)
import pytest
import torch
from evaluation_parts import tiny_lm
from lm_eval.tasks import TaskManager
from local_tasks import assert_metrics_match, expected_metrics, write_tasks
from mamba_lm.evaluation.cli import EvaluationError
from mamba_lm.evaluation.harness import run_harness, summarize
from mamba_lm.evaluation.harness_model import MambaEvalLM

from mamba_lm.hf import to_hf


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("tasks") / "local_tasks"
    return folder, write_tasks(folder)


def test_simple_evaluate_with_a_reference_mamba_checkpoint(
    tasks_dir, tokenizer_file, text_tokenizer, tmp_path
) -> None:
    folder, docs = tasks_dir
    model = tiny_lm("mamba", text_tokenizer.vocab_size)
    checkpoint = tmp_path / "mamba-tiny"
    checkpoint.mkdir()
    config = {
        "d_model": 32,
        "n_layer": 2,
        "vocab_size": text_tokenizer.vocab_size,
        "ssm_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": 8,
    }
    (checkpoint / "config.json").write_text(json.dumps(config))
    torch.save(model.state_dict(), checkpoint / "pytorch_model.bin")
    shutil.copy(tokenizer_file, checkpoint / "tokenizer.json")

    results = lm_eval.simple_evaluate(
        model="mamba_lm",
        model_args=f"checkpoint={checkpoint},batch_size=4,device=cpu,dtype=float32",
        tasks=["local_mc", "local_cloze", "local_rolling", "local_gen"],
        task_manager=TaskManager(include_path=str(folder), include_defaults=False),
        bootstrap_iters=0,
    )
    assert_metrics_match(summarize(results), expected_metrics(model, text_tokenizer, docs))


def test_run_harness_with_a_hugging_face_checkpoint(
    tasks_dir, tokenizer_file, text_tokenizer, tmp_path
) -> None:
    folder, docs = tasks_dir
    model = tiny_lm("transformer", text_tokenizer.vocab_size, seed=1)
    checkpoint = tmp_path / "llama-tiny"
    to_hf(model).save_pretrained(checkpoint)
    shutil.copy(tokenizer_file, checkpoint / "tokenizer.json")
    results, skipped = run_harness(
        checkpoint,
        ["local_mc", "local_rolling"],
        include_path=str(folder),
        model_args={"batch_size": 2, "device": "cpu", "dtype": "float32"},
        bootstrap_iters=0,
        include_defaults=False,
    )
    assert skipped == {}
    expected = expected_metrics(model, text_tokenizer, docs)
    assert_metrics_match(summarize(results), {k: expected[k] for k in ("local_mc", "local_rolling")})


def test_unknown_task_and_missing_tokenizer_name_the_cause(tasks_dir, text_tokenizer, tmp_path) -> None:
    folder, _ = tasks_dir
    with pytest.raises(ValueError, match=r"unknown lm-eval task\(s\): 'local_mcq' \(did you mean local_mc"):
        run_harness(tmp_path, ["local_mcq"], include_path=str(folder), include_defaults=False)
    checkpoint = tmp_path / "no-tokenizer"
    to_hf(tiny_lm("mamba", text_tokenizer.vocab_size)).save_pretrained(checkpoint)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json found for checkpoint"):
        run_harness(checkpoint, ["local_mc"], include_path=str(folder), include_defaults=False)


def test_tasks_whose_data_cannot_be_fetched_are_skipped_by_name(tasks_dir, text_tokenizer, tmp_path) -> None:
    folder, _ = tasks_dir
    offline = tmp_path / "offline_tasks"
    offline.mkdir()
    (offline / "unreachable.yaml").write_text(
        "task: unreachable_hub_task\ndataset_path: no-such-org/no-such-dataset\ntest_split: test\n"
        "output_type: loglikelihood\ndoc_to_text: '{{text}}'\ndoc_to_target: ' x'\n"
        "metric_list:\n  - metric: acc\n"
    )
    lm = MambaEvalLM(
        model=tiny_lm("mamba", text_tokenizer.vocab_size), tokenizer=text_tokenizer, device="cpu"
    )
    results, skipped = run_harness(
        None,
        ["local_mc", "unreachable_hub_task"],
        include_path=[str(folder), str(offline)],
        bootstrap_iters=0,
        include_defaults=False,
        lm=lm,
    )
    assert list(skipped) == ["unreachable_hub_task"]
    assert "local_mc" in summarize(results)
    with pytest.raises(EvaluationError, match="'unreachable_hub_task' could not load its data"):
        run_harness(
            None,
            ["unreachable_hub_task"],
            include_path=str(offline),
            include_defaults=False,
            skip_unreachable=False,
            lm=lm,
        )
