"""``python -m evaluation generate`` on a tiny trained run: the text it prints is the model's greedy
continuation, batched prompts equal single ones, sampling is seeded, and bad input names its cause."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from evaluation_parts import REPO_ROOT, subprocess_env
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.loading import load_for_eval


def generate(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["generate", *arguments, "device=cpu"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prints_the_greedy_continuation(lm_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = generate(capsys, f"checkpoint={lm_run}", "prompt=the cat sat on", "max_new_tokens=12")
    assert code == 0 and "tokens/s" in err

    loaded = load_for_eval(lm_run, "cpu")
    tokenizer = loaded.tokenizer
    prompt = torch.tensor([tokenizer.encode("the cat sat on")])
    ids = loaded.model.generate(prompt, max_new_tokens=12, top_k=1)[0, prompt.shape[1] :].tolist()
    if tokenizer.eos_token_id in ids:
        ids = ids[: ids.index(tokenizer.eos_token_id)]
    assert out == tokenizer.decode(ids) + "\n"
    assert generate(capsys, f"checkpoint={lm_run}", "prompt=the cat sat on", "max_new_tokens=12")[1] == out


def test_a_file_of_prompts_in_batches_equals_one_by_one(
    lm_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = ["the dog", "a big red tree and then", "blue"]
    file = tmp_path / "prompts.txt"
    file.write_text("\n".join(prompts) + "\n")
    code, out, _ = generate(capsys, f"checkpoint={lm_run}", f"prompts_file={file}", "max_new_tokens=6",
                            "batch_size=2")  # fmt: skip
    assert code == 0
    single = []
    for prompt in prompts:
        text = generate(capsys, f"checkpoint={lm_run}", f"prompt={prompt}", "max_new_tokens=6")[1]
        single.append(text.removesuffix("\n").replace("\n", "\\n"))
    assert out.split("\n") == [*single, ""]  # one line per prompt (str.splitlines would also cut at \f)


def test_sampling_is_seeded(lm_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def sampled(seed: int) -> str:
        arguments = ("prompt=the", "max_new_tokens=16", "temperature=1.5", "top_p=0.95", f"seed={seed}")
        code, out, _ = generate(capsys, f"checkpoint={lm_run}", *arguments)
        assert code == 0
        return out

    runs = [sampled(1), sampled(1), sampled(2), sampled(3)]
    assert runs[0] == runs[1] and len(set(runs[1:])) > 1


def test_bad_input_names_the_cause(lm_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def error(*arguments: str) -> str:
        code, out, err = generate(capsys, *arguments)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        return err

    run = f"checkpoint={lm_run}"
    assert "does not exist" in error(f"checkpoint={tmp_path / 'nowhere'}", "prompt=a")
    (tmp_path / "empty").mkdir()
    assert "empty" in error(f"checkpoint={tmp_path / 'empty'}", "prompt=a")
    assert "prompt is empty" in error(run, "prompt=")
    assert "exactly one of prompt" in error(run)
    (tmp_path / "blank.txt").write_text("the dog\n\nran\n")
    assert "line 2" in error(run, f"prompts_file={tmp_path / 'blank.txt'}")
    assert "max_new_tokens must be" in error(run, "prompt=a", "max_new_tokens=0")

    too_long = error(run, "prompt=the cat", "max_new_tokens=100000", "max_memory_gb=0.001")
    assert "is too long" in too_long
    per_row = float(re.search(r"one sequence of \d+ tokens needs ([\d.e-]+) GiB", error(
        run, "prompt=the cat", "max_new_tokens=50", "max_memory_gb=1e-9")).group(1))  # fmt: skip
    (tmp_path / "four.txt").write_text("the dog\na cat\nran\nsat\n")
    batch_error = error(run, f"prompts_file={tmp_path / 'four.txt'}", "batch_size=4", "max_new_tokens=50",
                        f"max_memory_gb={2.5 * per_row}")  # fmt: skip
    assert "batch_size=4 does not fit" in batch_error and "at most 2 fit" in batch_error


def test_stdout_holds_only_the_text(lm_run: Path) -> None:
    """As a user runs it: logs on stderr, the continuation alone on stdout."""
    command = [sys.executable, "-m", "evaluation", "generate", f"checkpoint={lm_run}", "prompt=the cat"]
    done = subprocess.run(
        [*command, "max_new_tokens=5", "device=cpu"], cwd=REPO_ROOT, capture_output=True, text=True,
        env=subprocess_env(), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and "tokens/s" in done.stderr
    assert "tokens/s" not in done.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_prints_what_the_cpu_prints(lm_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fp32 on both: the CUDA-graph decoder gives the CPU's greedy text; bf16 runs too."""
    arguments = ["generate", f"checkpoint={lm_run}", "prompt=the red dog", "max_new_tokens=20"]
    outputs = {}
    for device in ("cpu", "cuda"):
        assert main([*arguments, f"device={device}", "dtype=float32"]) == 0
        outputs[device] = capsys.readouterr().out
    assert outputs["cuda"] == outputs["cpu"]
    assert main([*arguments, "device=cuda", "dtype=bfloat16"]) == 0
    assert capsys.readouterr().out.strip()
