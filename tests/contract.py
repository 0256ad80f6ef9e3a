"""Contract check: a body we send upstream must validate against OpenAI's published schema.

The schemas and their validator are the emulator's (`emulator.schema`):
OpenAI's published realtime schemas, closed as the live API behaves, and
GPT-Live's generated from the openai SDK's types. So the bodies respx sees
here and the requests the emulator takes meet one and the same schema.
"""

from __future__ import annotations

import email
import email.policy
import json
from typing import Any

from emulator.schema import live, published


def ga_errors(body: Any, name: str = "RealtimeCreateClientSecretRequest") -> list[str]:
    """Every schema violation in `body`, as readable strings (empty when valid)."""
    return published(name).problems(body)


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
    """A `POST /live/sessions` body the openai SDK's types accept, closed (model included)."""
    errors = live().problems(body)
    assert not errors, errors
