"""``key=value`` command-line arguments parsed into a command's options dataclass, through OmegaConf.

Each command declares a dataclass whose fields (with a ``help`` in their metadata) are its keys. The
dataclass is the command's OmegaConf structured config, the same schema system as the training and data
configs: OmegaConf converts each value to its field's type (int, float, bool, str, a list of those,
Optional of those). On top of OmegaConf's rules: a list also reads as ``a,b,c``; ``none``, ``null``
or ``~`` is null. Unknown keys, bad values and missing required keys raise ``UsageError`` with one
line that names the key (and the value, or the valid keys).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

T = TypeVar("T")
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
    """Build ``options_class`` from ``key=value`` strings, each converted to its field's type by OmegaConf.

    Keys with a dot (``data.seqlen=512``) go to a field named ``overrides`` (a dict) when the class
    has one: they are passed on to the config they address.
    """
    names = [field.name for field in dataclasses.fields(options_class)]
    hints = typing.get_type_hints(options_class)
    schema = OmegaConf.structured(options_class)
    overrides: dict[str, str] = {}
    for key, text in pairs.items():
        if "." in key and "overrides" in names:
            overrides[key] = text
            continue
        if key not in names or key == "overrides":
            valid = ", ".join(name for name in names if name != "overrides")
            raise UsageError(f"unknown key {key!r} for '{command}'; valid keys: {valid}")
        try:
            schema[key] = _command_line_value(text, typing.get_origin(hints[key]) is list)
        except ValidationError as error:
            reason = str(error).splitlines()[0]
            raise UsageError(f"{command}: bad value for {key}={text}: {reason}") from None
    missing = [name for name in names if name in OmegaConf.missing_keys(schema)]
    if missing:
        raise UsageError(f"'{command}' needs {', '.join(f'{name}=...' for name in missing)}")
    options = OmegaConf.to_object(schema)
    if overrides:
        options.overrides = overrides
    return options


def _command_line_value(text: str, is_list: bool) -> Any:
    """What OmegaConf should check for one argument: null, a list of strings, or the string itself (with
    ``${`` escaped: an argument is never an OmegaConf interpolation)."""
    if text.strip().lower() in NONE_WORDS:
        return None
    text = text.replace("${", "\\${")
    if is_list:
        text = text.strip().removeprefix("[").removesuffix("]")
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


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
