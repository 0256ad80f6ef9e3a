"""Parse request bodies strictly, and word every failure as OpenAI's 400 naming the field.

pydantic reports where an error is as a location tuple that also holds union
branch tags (`constrained-int`, `literal['inf']`, `server_vad`, ...). Callers
need the field's dotted path (`audio.input.turn_detection.threshold`,
`tools[0].name`), as OpenAI writes `param`, so the tags are removed here.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from service.core.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)

FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
TAGS = frozenset(
    {
        "int",
        "float",
        "str",
        "bool",
        "list",
        "dict",
        "none",
        "server_vad",
        "semantic_vad",
        "function",
        "mcp",
        "realtime",
        "transcription",
        "input_text",
        "input_image",
        "input_file",
    }
)
GA_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "include",
        "reasoning",
        "truncation",
        "parallel_tool_calls",
        "idle_timeout_ms",
        "delay",
        "keywords",
        "languages",
        "strength",
        "server_label",
        "server_url",
        "connector_id",
    }
)
"""GA parameters with no beta counterpart: on the beta endpoint, refused saying where they go."""
PROMPT_OBJECTS_SHUT_DOWN = (
    "OpenAI shut down reusable prompt objects (`pmpt_...` ids, `v1/prompts`) on 2026-11-30"
)
"""Why a session's `prompt` is refused: OpenAI's "Migrate from prompt objects" guide."""
PROMPT_LOCATIONS = frozenset({("prompt",), ("session", "prompt")})
"""Where a prompt object sits in a body the models do not let carry one (beta, GPT-Live)."""


def prompt_object_refused(param: str) -> InvalidRequest:
    """The 400 for a session that names a prompt object, which OpenAI would refuse to mint."""
    return InvalidRequest(
        f"Unsupported parameter: '{param}'. {PROMPT_OBJECTS_SHUT_DOWN}, so no session "
        "can use one; send the prompt's text as `instructions` instead.",
        param=param,
        code="unsupported_parameter",
    )


def param_of(loc: tuple[int | str, ...], prefix: str = "") -> str | None:
    """`("tools", 0, "name")` -> `tools[0].name`; union tags are dropped."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif FIELD.match(part) and part not in TAGS:
            path = f"{path}.{part}" if path else part
    return path or None


def _message(error: ErrorDetails, param: str | None, beta: bool) -> tuple[str, str]:
    kind = error["type"]
    name = param or "body"
    if kind == "extra_forbidden":
        if tuple(error["loc"]) in PROMPT_LOCATIONS:
            refused = prompt_object_refused(name)
            return refused.message, str(refused.code)
        last = str(error["loc"][-1]) if error["loc"] else ""
        if beta and last in GA_ONLY_FIELDS:
            return (
                f"Unsupported parameter: '{name}'. It has no equivalent in the beta Realtime "
                "Session; send it in OpenAI's GA shape to POST /v1/realtime/client_secrets.",
                "unsupported_parameter",
            )
        return f"Unknown parameter: '{name}'.", "unknown_parameter"
    if kind == "missing":
        return f"Missing required parameter: '{name}'.", "missing_required_parameter"
    if kind == "json_invalid":
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        reason = ctx.get("error", "")
        return (f"We could not parse the JSON body of your request ({reason}).", "invalid_json")
    if kind in ("model_type", "model_attributes_type") and param is None:
        return "The request body must be a JSON object.", "invalid_type"
    code = "invalid_type" if kind.endswith("_type") or kind == "model_type" else "invalid_value"
    return f"Invalid value for '{name}': {error['msg']}.", code


def invalid_request_from(
    exc: ValidationError, prefix: str = "", beta: bool = False
) -> InvalidRequest:
    """The 400 for a failed validation: the first problem, with its dotted `param`."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    param = param_of(first["loc"], prefix)
    message, code = _message(first, param, beta)
    if len(errors) > 1 and first["type"] not in ("json_invalid",):
        others = sorted({p for e in errors[1:] if (p := param_of(e["loc"], prefix)) and p != param})
        if others:
            message += f" Also invalid: {', '.join(repr(p) for p in others[:5])}."
    return InvalidRequest(message, param=param, code=code)


def parse(model: type[M], body: bytes, beta: bool = False, prefix: str = "") -> M:
    """Strict JSON validation of a body; every failure is a 400 naming the field.

    `beta` marks the beta endpoint, where a GA-only field is refused with a
    pointer to the GA endpoint rather than as unknown. `prefix` names where
    the JSON sits in the request (`session`: a multipart part), for `param`.
    """
    if not body.strip():
        raise InvalidRequest(
            f"The {prefix or 'request body'} must be a JSON object.",
            param=prefix or None,
            code="invalid_json",
        )
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise invalid_request_from(exc, prefix, beta=beta) from None
    except RecursionError:
        raise InvalidRequest(
            "The request body is nested too deeply.", code="invalid_json"
        ) from None


def translated(model: type[M], data: dict[str, Any]) -> M:
    """Validate a GA session translated from a beta request.

    The beta checks (`check_carriable`) refuse what GA cannot carry first, so
    this should not fail; if it does, the caller still gets a 400, never a 500.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request_from(exc, beta=True) from None
