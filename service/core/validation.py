"""Validation errors as start-up messages name them: each field's path and what is wrong."""

from __future__ import annotations

from pydantic import ValidationError


def problems(exc: ValidationError, *, prefix: str = "", whole: str = "value") -> str:
    """`a.b: message; c: message`, one per error, each path after `prefix` (`whole` names an
    error of the value itself). Never the input: a file's values can be secrets."""
    return "; ".join(
        f"{prefix}{'.'.join(map(str, error['loc'])) or whole}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )
