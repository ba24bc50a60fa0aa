"""Local lm-eval tasks for the tests (lm-eval's YAML format on a tiny generated jsonl dataset, one task
per request type) and the same metrics computed directly, without lm-eval."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from evaluation_parts import WORDS, direct_logprob, generated_sentences
from mamba_lm.evaluation.text_tokenizer import TextTokenizer

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
