"""``key=value`` command-line arguments parsed into a command's options dataclass.

Each command declares a dataclass whose fields (with a ``help`` in their metadata) are its keys;
values are converted to the field's type (int, float, bool, str, list of str, or Optional of those).
Unknown keys, malformed arguments and missing required keys raise ``UsageError`` with a message
that names the key and lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
NONE_WORDS = {"none", "null", "~"}


class UsageError(ValueError):
    """Bad command-line input; the message says what was wrong and what is expected."""


class EvaluationError(RuntimeError):
    """An evaluation that cannot go on for a reason outside this code (a task's data cannot be
    fetched, the training run of a quick mode failed); the message names the cause."""


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with a help text (shown by ``python -m evaluation help``)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def split_arguments(arguments: list[str]) -> tuple[list[str], dict[str, str]]:
    """Separate positional arguments (e.g. run folders) from ``key=value`` pairs.

    A repeated key raises ``UsageError``.
    """
    positional, pairs = [], {}
    for argument in arguments:
        key, sep, value = argument.partition("=")
        if not sep or not key or "/" in key:
            positional.append(argument)
            continue
        key = key.lstrip("+")
        if key in pairs:
            raise UsageError(f"key {key!r} given twice ({key}={pairs[key]} and {argument})")
        pairs[key] = value
    return positional, pairs


def parse_options(options_class: type[T], pairs: dict[str, str], command: str) -> T:
    """Build ``options_class`` from ``key=value`` strings, converting each to its field's type.

    Keys with a dot (``data.seqlen=512``) go to a field named ``overrides`` (a dict) when the class
    has one: they are passed on to the config they address.
    """
    fields = {field.name: field for field in dataclasses.fields(options_class)}
    hints = typing.get_type_hints(options_class)
    values: dict[str, Any] = {}
    overrides: dict[str, str] = {}
    for key, text in pairs.items():
        if "." in key and "overrides" in fields:
            overrides[key] = text
            continue
        if key not in fields or key == "overrides":
            valid = ", ".join(name for name in fields if name != "overrides")
            raise UsageError(f"unknown key {key!r} for '{command}'; valid keys: {valid}")
        try:
            values[key] = convert(text, hints[key])
        except ValueError as error:
            raise UsageError(f"{command}: bad value for {key}: {error}") from error
    if overrides:
        values["overrides"] = overrides
    missing = [
        name
        for name, field in fields.items()
        if name not in values
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UsageError(f"'{command}' needs {', '.join(f'{name}=...' for name in missing)}")
    return options_class(**values)


def convert(text: str, hint: Any) -> Any:
    """Convert one command-line string to the type ``hint`` (see the module docstring)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arguments = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if text.strip().lower() in NONE_WORDS and len(arguments) < len(typing.get_args(hint)):
            return None
        errors = []
        for argument in arguments:
            try:
                return convert(text, argument)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError("; ".join(errors))
    if origin is list:
        (item,) = typing.get_args(hint) or (str,)
        text = text.strip().removeprefix("[").removesuffix("]")
        return [convert(part.strip(), item) for part in text.split(",") if part.strip()]
    if hint is bool:
        word = text.strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"expected true/false, got {text!r}")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if hint is str:
        return text
    if hint is dict or origin is dict:
        raise ValueError("this key takes dotted sub-keys (key.sub=value)")
    raise TypeError(f"unsupported option type {hint!r}")


def describe_options(options_class: type) -> list[str]:
    """One line per key: ``name=<default>  help``."""
    lines = []
    for field in dataclasses.fields(options_class):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = "(required)"
        help_text = field.metadata.get("help", "")
        lines.append(f"    {field.name}={default}\n        {help_text}")
    return lines
