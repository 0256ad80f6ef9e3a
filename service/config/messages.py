"""Start-up error messages: each names the variable to fix, and never echoes its value."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args, get_origin

from pydantic import ValidationError

from service.config.settings import Settings
from service.config.variables import UnknownVariable, suggestion

STARTS_WITH_A_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
"""A message that already begins with the variable it is about (`POLICY_DEFAULT_MODEL '...'`)."""


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error location refers to."""
    return "_".join(str(part) for part in loc if isinstance(part, str)).upper()


def _choices(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """The values a one-of setting takes (`AUTH_MODE`), to list when it is missing."""
    field = Settings.model_fields.get(str(loc[0])) if len(loc) == 1 else None
    if field is None or get_origin(field.annotation) is not Literal:
        return ()
    return tuple(str(value) for value in get_args(field.annotation))


def _line(item: dict[str, object], name: str) -> str | None:
    """One variable's problem, or None for an error that only follows from another."""
    kind, loc = item["type"], item["loc"]
    assert isinstance(loc, tuple)  # noqa: S101 - pydantic's error locations are tuples
    if kind == "default_factory_not_called":  # `WORKERS` is computed from a field that failed
        return None
    if kind == "extra_forbidden":  # a `POLICY_` name the policy does not have
        return str(UnknownVariable(name, suggestion(name)))
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        choices = _choices(loc)
        message = f"is required (one of: {', '.join(choices)})" if choices else "is required"
    if not name or STARTS_WITH_A_NAME.match(message):
        return message
    return f"{name}: {message}"


def describe(error: ValidationError, unknown: Sequence[UnknownVariable] = ()) -> str:
    """A start-up error message that names each offending variable, never its value.

    `unknown` adds the misspelt variables not already named: a typo is often
    why a required variable is missing (`AUTH_MOD` for `AUTH_MODE`).
    """
    lines: list[str] = []
    for item in error.errors(include_input=False, include_url=False):
        line = _line(dict(item), env_name(item["loc"]))
        if line is not None:
            lines.append(line)
    text = "\n".join(lines)
    lines += [
        str(variable)
        for variable in unknown
        if not re.search(rf"\b{re.escape(variable.name)}\b", text)
    ]
    return "invalid configuration:\n  " + "\n  ".join(lines)
