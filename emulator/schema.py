"""Request bodies checked against OpenAI's published JSON Schema, refused as OpenAI refuses.

The emulator must refuse what OpenAI refuses, or a test against it cannot
catch the service sending something OpenAI would not take; so it validates
against OpenAI's own schema, never the service's models.

`schemas/openai-realtime-schemas.min.json` is the structure-only copy of the
realtime part of OpenAI's published OpenAPI schemas (openai/openai-openapi,
openapi.json at f85dbe2, 2026-08-21; MIT license), which adds the translation
endpoint, with two repairs: `RealtimeFunctionTool` keeps its `description`
property (lost when descriptions were stripped), and
`noise_reduction.strength` is added where the openai SDK 3.57 types have it
(newer than the published spec). GPT-Live has no published schema: its
`schemas/live.json` is generated from the openai SDK's types
(`emulator.live_schema`), and so are the bodies that answer a Live SIP call
(`live-accept.json`, `live-reject.json`, `live-refer.json`); a Realtime
SIP call's are published (`RealtimeSessionCreateRequestGA` to accept,
`RealtimeCallRejectRequest`, `RealtimeCallReferRequest`).

The spec leaves objects open, but the live API rejects unknown parameters,
so `closed` closes every object schema (`additionalProperties: false`) and
turns OpenAPI 3.0's `nullable` into JSON Schema's null type. Validation is
Draft 2020-12 by jsonschema-rs: on the hot path of `make bench`'s limit peer
it takes ~1 us for a minimal mint body and ~7 us for a full one, where
fastjsonschema takes ~10-80 us and jsonschema ~120-900 us (measured on the
2-core benchmark machine; figures in the commit that chose it).

A refusal names one problem as OpenAI does (a wrong value before a missing
one, which is often its consequence): a dotted `param`
(`session.audio.output.voice`, `session.tools[0].name`) and a code
(`unknown_parameter`, `missing_required_parameter`, `invalid_type`,
`invalid_value`). Where a body fails a `oneOf`/`anyOf`, the problem reported
is the one in the branch the caller meant: not a branch whose `type`
discriminator differs (OpenAI's unions are tagged by `type`), and of those
the one with the fewest problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema_rs import Draft202012Validator, ValidationError, ValidationErrorKind

from emulator.errors import InvalidRequest

SCHEMAS = Path(__file__).with_name("schemas")
PUBLISHED_FILE = SCHEMAS / "openai-realtime-schemas.min.json"
LIVE_FILE = SCHEMAS / "live.json"
SHOWN = "the value"
"""What a message says in place of the caller's value (never echoed: it may be long)."""
UNIONS = (ValidationErrorKind.AnyOf, ValidationErrorKind.OneOfNotValid)
TAGS = (ValidationErrorKind.Enum, ValidationErrorKind.Constant)


def closed(node: Any) -> Any:
    """A schema with every object closed and OpenAPI's `nullable` as a null type."""
    if isinstance(node, dict):
        node = {key: closed(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [closed(item) for item in node]
    return node


class RequestSchema:
    """One body's schema, compiled once."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._validator = Draft202012Validator(
            dict(schema), validate_formats=False, offline=True, mask=SHOWN
        )

    def problems(self, instance: object) -> list[str]:
        """Every violation as `path: message` (empty when valid), for tests and logs."""
        return [
            f"{'/'.join(map(str, error.instance_path))}: {error.message}"
            for error in self._validator.iter_errors(instance)
        ]

    def refusal(self, instance: object, prefix: str = "") -> InvalidRequest | None:
        """The 400 OpenAI would answer `instance` with, or None if it is valid.

        `prefix` names where `instance` sits in the request (`session`: a
        multipart part), so that `param` reads as the caller wrote it.
        """
        if self._validator.is_valid(instance):
            return None
        return _refusal(_meant(_first(list(self._validator.iter_errors(instance)))), prefix)


@cache
def _published_components() -> dict[str, Any]:
    document = closed(orjson.loads(PUBLISHED_FILE.read_bytes()))
    components: dict[str, Any] = document["components"]
    return components


@cache
def published(name: str) -> RequestSchema:
    """OpenAI's published schema `name` (`#/components/schemas/NAME`), closed."""
    return RequestSchema(
        {"$ref": f"#/components/schemas/{name}", "components": _published_components()}
    )


@cache
def live() -> RequestSchema:
    """`POST /v1/live/sessions`'s body (`LiveCreateParams`), as generated from the SDK."""
    schema: dict[str, Any] = orjson.loads(LIVE_FILE.read_bytes())
    return RequestSchema(schema)


def live_sip_file(action: str) -> Path:
    """Where the schema of answering a Live SIP call (`accept`, `reject`, `refer`) is shipped."""
    return SCHEMAS / f"live-{action}.json"


@cache
def live_sip(action: str) -> RequestSchema:
    """The body of `POST /v1/live/sessions/{id}/{action}`, as generated from the SDK."""
    schema: dict[str, Any] = orjson.loads(live_sip_file(action).read_bytes())
    return RequestSchema(schema)


def _first(errors: Sequence[ValidationError]) -> ValidationError:
    """The problem to report first: something sent and wrong before something missing.

    A wrong value says what the caller meant to do (`transport.type: "ws"`);
    a parameter missing beside it is often only a consequence.
    """
    present = (e for e in errors if not isinstance(e.kind, ValidationErrorKind.Required))
    return next(present, errors[0])


def _meant(error: ValidationError) -> ValidationError:
    """The problem in the union branch the caller meant, descending to a leaf."""
    while isinstance(error.kind, UNIONS) and error.kind.context:
        branches = error.kind.context
        tagged = [branch for branch in branches if not _other_tag(branch, error.instance_path)]
        error = _first(min(tagged or branches, key=len))
    return error


def _other_tag(branch: Sequence[ValidationError], path: Sequence[str | int]) -> bool:
    """Whether this branch is for another kind of object: its `type` did not match."""
    tag = [*path, "type"]
    return any(isinstance(error.kind, TAGS) and error.instance_path == tag for error in branch)


def _param(prefix: str, path: Sequence[str | int]) -> str | None:
    """`("tools", 0, "name")` -> `tools[0].name`, under `prefix`."""
    text = prefix
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text or None


def _refusal(error: ValidationError, prefix: str) -> InvalidRequest:
    kind = error.kind
    path = error.instance_path
    if isinstance(kind, ValidationErrorKind.AdditionalProperties):
        param = _param(prefix, [*path, kind.unexpected[0]])
        return InvalidRequest(
            f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter"
        )
    if isinstance(kind, ValidationErrorKind.Required):
        param = _param(prefix, [*path, kind.property])
        return InvalidRequest(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    param = _param(prefix, path)
    if isinstance(kind, ValidationErrorKind.Type):
        if param is None:
            return InvalidRequest("The request body must be a JSON object.", code="invalid_type")
        return InvalidRequest(
            f"Invalid type for '{param}': {error.message}.", param=param, code="invalid_type"
        )
    return InvalidRequest(
        f"Invalid value for '{param or 'body'}': {error.message}.",
        param=param,
        code="invalid_value",
    )
