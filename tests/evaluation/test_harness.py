"""lm-eval end to end, offline: local tasks in lm-eval's YAML format on a tiny local dataset, the model
registered as ``mamba_lm`` and loaded from checkpoint folders (reference mamba_ssm layout, Hugging Face
layout); the harness's numbers equal log-likelihoods computed directly."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import lm_eval
import pytest
import torch
from conftest import WORDS, generated_sentences, tiny_lm
from lm_eval.tasks import TaskManager
from test_harness_model import direct_logprob

import evaluation  # noqa: F401  (registers mamba_lm)
from evaluation.cli import EvaluationError
from evaluation.harness import run_harness, summarize
from evaluation.harness_model import MambaEvalLM
from evaluation.text_tokenizer import TextTokenizer
from mamba_lm.hf import to_hf

TASK_COMMON = "dataset_path: json\ntest_split: test\nmetadata:\n  version: 1.0\n"


def write_tasks(folder: Path) -> dict[str, list[dict]]:
    """Four local tasks (one per request type) and their data; returns the documents by task."""
    folder.mkdir(parents=True)
    sentences = generated_sentences(12, seed=3)
    docs = {
        "local_mc": [
            {
                "question": s.rsplit(" ", 1)[0],
                "choices": [s.rsplit(" ", 1)[1], WORDS[i % 7], WORDS[(i + 3) % 11]],
                "label": 0,
            }
            for i, s in enumerate(sentences[:6])
        ],
        "local_cloze": [{"text": s} for s in sentences[6:10]],
        "local_rolling": [{"text": s} for s in sentences[:3]],
        "local_gen": [
            {"prompt": s.split(" ", 2)[0] + " " + s.split(" ", 2)[1], "answer": "cat"} for s in sentences[:3]
        ],
    }
    specs = {
        "local_mc": (
            "output_type: multiple_choice\ndoc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\n"
            "doc_to_target: label\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n"
        ),
        "local_cloze": (
            "output_type: loglikelihood\ndoc_to_text: \"{{text.split(' ')[:-1]|join(' ')}}\"\n"
            "doc_to_target: \"{{' '+text.split(' ')[-1]}}\"\nmetric_list:\n"
            "  - metric: perplexity\n    aggregation: perplexity\n    higher_is_better: false\n"
            "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        ),
        "local_rolling": (
            "output_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\n"
            "metric_list:\n  - metric: word_perplexity\n"
        ),
        "local_gen": (
            "output_type: generate_until\ndoc_to_text: '{{prompt}}'\ndoc_to_target: '{{answer}}'\n"
            "generation_kwargs:\n  until: ['.', 'dog']\n  max_gen_toks: 8\n  do_sample: false\n"
            "metric_list:\n  - metric: exact_match\n"
        ),
    }
    for name, spec in specs.items():
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(doc) + "\n" for doc in docs[name]))
        (folder / f"{name}.yaml").write_text(
            f"task: {name}\n{TASK_COMMON}dataset_kwargs:\n  data_files:\n    test: {data}\n{spec}"
        )
    return docs


def expected_metrics(model: torch.nn.Module, tokenizer: TextTokenizer, docs: dict[str, list[dict]]) -> dict:
    """The same metrics computed directly: unbatched forward passes, no lm-eval."""
    encode = tokenizer.encode

    def loglikelihood(context: str, continuation: str) -> tuple[float, bool]:
        whole, context_ids = encode(context + continuation), encode(context)
        return direct_logprob(model, context_ids, whole[len(context_ids) :])

    acc = acc_norm = 0
    for doc in docs["local_mc"]:
        scores = [loglikelihood(doc["question"], " " + choice)[0] for choice in doc["choices"]]
        acc += max(range(3), key=lambda j: scores[j]) == doc["label"]
        acc_norm += max(range(3), key=lambda j: scores[j] / len(doc["choices"][j])) == doc["label"]
    cloze = [
        loglikelihood(*d["text"].rsplit(" ", 1)[0:1], " " + d["text"].rsplit(" ", 1)[1])
        for d in docs["local_cloze"]
    ]
    rolling = [
        direct_logprob(model, [tokenizer.eos_token_id], encode(d["text"]))[0] for d in docs["local_rolling"]
    ]
    words = sum(len(re.split(r"\s+", d["text"])) for d in docs["local_rolling"])
    exact = 0
    for doc in docs["local_gen"]:
        ids = torch.tensor([encode(doc["prompt"])])
        new = model.generate(ids, max_new_tokens=8, top_k=1, eos_token_id=tokenizer.eos_token_id)[
            0, ids.shape[1] :
        ]
        text = tokenizer.decode([t for t in new.tolist() if t != tokenizer.eos_token_id])
        exact += text.split(".")[0].split("dog")[0] == doc["answer"]
    return {
        "local_mc": {"acc": acc / 6, "acc_norm": acc_norm / 6},
        "local_cloze": {
            "acc": sum(greedy for _, greedy in cloze) / len(cloze),
            "perplexity": math.exp(-sum(score for score, _ in cloze) / len(cloze)),
        },
        "local_rolling": {"word_perplexity": math.exp(-sum(rolling) / words)},
        "local_gen": {"exact_match": exact / 3},
    }


def assert_metrics_match(summary: dict, expected: dict) -> None:
    for task, metrics in expected.items():
        for metric, value in metrics.items():
            assert summary[task][metric] == pytest.approx(value, rel=1e-4), (task, metric)


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
