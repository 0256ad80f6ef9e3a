"""Contract check: a body we send upstream must validate against OpenAI's published schema.

`openai-realtime-schemas.min.json` is the structure-only copy of OpenAI's
OpenAPI schemas (MIT). The spec leaves objects open, but the live API rejects
unknown parameters, so every object schema is closed here, and OpenAPI 3.0's
`nullable` is turned into JSON Schema's null type.

The copy is `../shared/upstream/openai-realtime-schemas.min.json` (which adds
the translation endpoint) with two repairs: `RealtimeFunctionTool` keeps its
`description` property (lost when descriptions were stripped), and
`noise_reduction.strength` is added where the openai SDK 3.57 types have it
(newer than the published spec).
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from openai.types.live.live_create_params import LiveCreateParams
from pydantic import TypeAdapter

from service.contract import LiveCreateRequest

SCHEMA_FILE = Path(__file__).with_name("openai-realtime-schemas.min.json")


def _close(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _close(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_close(item) for item in node]
    return node


@cache
def _validator(name: str) -> Draft202012Validator:
    document = json.loads(SCHEMA_FILE.read_text())
    closed = _close(copy.deepcopy(document))
    schema = {"$ref": f"#/components/schemas/{name}", "components": closed["components"]}
    return Draft202012Validator(schema)


def ga_errors(body: Any, name: str = "RealtimeCreateClientSecretRequest") -> list[str]:
    """Every schema violation in `body`, as readable strings (empty when valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _validator(name).iter_errors(body)
    ]


def assert_valid_ga_request(body: Any, name: str = "RealtimeCreateClientSecretRequest") -> None:
    """Fail with the schema's own words if `body` is not a valid GA mint request."""
    errors = ga_errors(body, name)
    assert not errors, errors


def assert_valid_translation_request(body: Any) -> None:
    """Fail with the schema's own words if `body` is not a valid translation mint request."""
    assert_valid_ga_request(body, "RealtimeTranslationClientSecretCreateRequest")


def call_parts(request: Any) -> dict[str, tuple[str, bytes]]:
    """The parts of a multipart request by name: `(content type, payload)`."""
    head = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.message_from_bytes(head + request.content, policy=email.policy.HTTP)
    assert message.is_multipart(), "not a multipart body"
    parts: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str), "a part without a name"
        assert name not in parts, f"part {name!r} twice"
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts[name] = (part.get_content_type(), payload)
    return parts


def assert_valid_call_request(request: Any) -> dict[str, Any]:
    """A `POST /realtime/calls` as the openai SDK sends it; returns its session.

    Parts `sdp` (application/sdp, an offer) and `session` (application/json, a
    valid `RealtimeSessionCreateRequestGA`), nothing else.
    """
    parts = call_parts(request)
    assert set(parts) == {"sdp", "session"}, sorted(parts)
    sdp_type, sdp = parts["sdp"]
    assert sdp_type == "application/sdp", sdp_type
    assert sdp.startswith(b"v=0")
    session_type, raw = parts["session"]
    assert session_type == "application/json", session_type
    session: dict[str, Any] = json.loads(raw)
    assert_valid_ga_request(session, "RealtimeSessionCreateRequestGA")
    return session


def assert_valid_live_request(body: Any) -> None:
    """A `POST /live/sessions` body the openai SDK's types accept (model included).

    The SDK's TypedDicts check types but let unknown keys through; the
    service's strict model, drift-checked against those TypedDicts in
    test_live_contract, refuses unknown keys.
    """
    TypeAdapter(LiveCreateParams).validate_python(body)
    LiveCreateRequest.model_validate(body, strict=True)
    assert isinstance(body["session"].get("model"), str), "OpenAI requires session.model"
