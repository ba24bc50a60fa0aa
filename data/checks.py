"""Value checks shared by the data config dataclasses: errors name the key and the value."""

from __future__ import annotations

from typing import Any


def check_choice(where: str, value: Any, choices: tuple) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{where} must be one of {list(choices)}, got {value!r}")


def check_positive(where: str, value: int | None) -> None:
    """Raise ValueError if ``value`` is set and below 1."""
    if value is not None and value < 1:
        raise ValueError(f"{where} must be >= 1, got {value}")
