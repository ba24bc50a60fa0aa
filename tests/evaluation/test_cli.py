"""`python -m evaluation <command> key=value ...`: parsing, usage, and errors that name the cause."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.cli import UsageError, option, parse_options, split_arguments


@dataclass
class ExampleOptions:
    checkpoint: str = option(help="required path")
    batch_size: int = option(8, help="an int")
    dtype: str = option("auto", help="a string")
    stride: int | None = option(None, help="optional int")
    tasks: list[str] = option([], help="a list")
    quick: bool = option(False, help="a flag")
    temperature: float = option(1.0, help="a float")
    overrides: dict = option({}, help="dotted keys")


def test_values_are_converted_to_the_field_types() -> None:
    positional, pairs = split_arguments(
        [
            "runs/a",
            "checkpoint=x=y",
            "batch_size=4",
            "stride=none",
            "tasks=piqa,hellaswag",
            "quick=true",
            "temperature=0.5",
            "data.seqlen=128",
            "+dtype=bf16",
        ]
    )
    options = parse_options(ExampleOptions, pairs, "example")
    assert positional == ["runs/a"]
    assert options.checkpoint == "x=y"
    assert options.batch_size == 4 and options.stride is None and options.quick is True
    assert options.tasks == ["piqa", "hellaswag"] and options.temperature == 0.5 and options.dtype == "bf16"
    assert options.overrides == {"data.seqlen": "128"}
    assert parse_options(ExampleOptions, {"checkpoint": "c", "stride": "16"}, "example").stride == 16


def test_values_are_never_interpolated_and_lists_take_brackets() -> None:
    options = parse_options(ExampleOptions, {"checkpoint": "${oops}/x", "tasks": "[a, b]"}, "example")
    assert options.checkpoint == "${oops}/x" and options.tasks == ["a", "b"]
    assert parse_options(ExampleOptions, {"checkpoint": "c", "quick": "1"}, "example").quick is True


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            {"checkpoint": "c", "batchsize": "4"},
            "unknown key 'batchsize' for 'example'; valid keys: checkpoint, batch_size",
        ),
        (
            {"checkpoint": "c", "batch_size": "four"},
            "example: bad value for batch_size=four: Value 'four' of type 'str' could not be converted",
        ),
        (
            {"checkpoint": "c", "quick": "maybe"},
            "bad value for quick=maybe: Value 'maybe' is not a valid bool",
        ),
        ({"checkpoint": "c", "temperature": "hot"}, "bad value for temperature=hot"),
        ({"checkpoint": "none"}, "bad value for checkpoint=none: field 'checkpoint' is not Optional"),
        ({"batch_size": "1"}, "'example' needs checkpoint=..."),
    ],
)
def test_bad_keys_and_values_name_the_cause(pairs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_options(ExampleOptions, pairs, "example")


def test_a_key_given_twice_is_an_error() -> None:
    with pytest.raises(UsageError, match="given twice"):
        split_arguments(["a=1", "a=2"])


def test_main_usage_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "commands:" in capsys.readouterr().out
    assert main(["help", "perplexity"]) == 0
    assert "stride=" in capsys.readouterr().out
    assert main(["evaluate_everything"]) == 2
    assert "unknown command 'evaluate_everything'" in capsys.readouterr().err
    assert main(["report", "out=x", "colour=blue"]) == 2
    assert "unknown key 'colour' for 'report'" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "report needs run folders" in capsys.readouterr().err


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "lra", "colour=blue"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "unknown key 'colour' for 'lra'" in result.stderr


def test_import_registers_the_lm_eval_model() -> None:
    from lm_eval.api.registry import model_registry

    import evaluation  # noqa: F401

    assert "mamba_lm" in model_registry
