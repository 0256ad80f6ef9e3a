"""Property: every GA session OpenAI's schemas accept mints, schema-valid, never a 500.

Sessions are generated from OpenAI's published schema itself
(`RealtimeSessionCreateRequestGA`, closed as in `emulator/schema.py`). Under a
policy that clamps instead of refusing, each one must mint, and the body the
`upstream` fixture receives must validate against the same schema. The only
400s allowed are the ranges OpenAI documents in prose but its schema leaves
open (`RANGES_THE_SCHEMA_OMITS`), and `session.prompt`, which the schema still
lists though OpenAI shut prompt objects down (`RETIRED_FIELDS`). Unbounded
numbers are drawn from 0-1 and integers from 0-4096, inside those ranges, so
most examples reach the policy; the out-of-range cases have tests of their own
in `test_bad_input.py`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from emulator.schema import PUBLISHED_FILE
from service.api import create_app
from tests.conftest import MakeSettings
from tests.paths import CLIENT_SECRETS, TRANSLATION_CLIENT_SECRETS

RANGES_THE_SCHEMA_OMITS = frozenset(
    {
        "session.max_output_tokens",  # 1-4096 or "inf"
        "session.output_modalities",  # exactly one of audio, text
        "session.audio.input.turn_detection.threshold",  # 0.0-1.0
        "session.audio.input.turn_detection.prefix_padding_ms",  # non-negative
        "session.audio.input.turn_detection.silence_duration_ms",  # non-negative
        "session.audio.input.format",  # `type` is what names a format; the schema omits required
        "session.audio.output.format",
        "session.audio.input.noise_reduction.type",  # required so the policy governs the kind
    }
)
RETIRED_FIELDS = frozenset({"session.prompt"})
"""In the published schema, refused since OpenAI shut prompt objects down (2026-11-30)."""
ALLOWED_400S = RANGES_THE_SCHEMA_OMITS | RETIRED_FIELDS
SCHEMAS: dict[str, Any] = json.loads(PUBLISHED_FILE.read_text())["components"]["schemas"]
JSON_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", max_size=8)


def from_schema(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for the JSON values `node` (OpenAI's schema subset) describes."""
    if "$ref" in node:
        return from_schema(SCHEMAS[node["$ref"].rsplit("/", 1)[-1]])
    for key in ("anyOf", "oneOf"):
        if node.get(key):
            rest = {name: value for name, value in node.items() if name != key}
            return st.one_of([from_schema({**rest, **branch}) for branch in node[key]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    strategy: st.SearchStrategy[Any]
    if kind == "string":
        if "pattern" in node:
            strategy = st.from_regex(node["pattern"], fullmatch=True)
        elif node.get("format") == "uri":
            strategy = st.just("https://mcp.example.com/mcp")
        else:
            strategy = JSON_TEXT
    elif kind == "number":
        strategy = st.floats(node.get("minimum", -10.0), node.get("maximum", 10.0), allow_nan=False)
    elif kind == "integer":
        strategy = st.integers(node.get("minimum", 0), node.get("maximum", 4096))
    elif kind == "boolean":
        strategy = st.booleans()
    elif kind == "array":
        strategy = st.lists(
            from_schema(node.get("items", {"type": "string"})),
            min_size=node.get("minItems", 0),
            max_size=3,
        )
    elif kind == "object" or "properties" in node:
        strategy = _object(node)
    else:
        strategy = st.none()
    return st.one_of(strategy, st.none()) if node.get("nullable") else strategy


def _object(node: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = node.get("properties", {})
    extra = node.get("additionalProperties")
    if not properties:
        values = from_schema(extra) if isinstance(extra, dict) else JSON_TEXT
        return st.dictionaries(JSON_TEXT, values, max_size=2)
    required = set(node.get("required", ()))
    return st.fixed_dictionaries(
        {name: from_schema(sub) for name, sub in properties.items() if name in required},
        optional={
            name: from_schema(sub) for name, sub in properties.items() if name not in required
        },
    )


SESSIONS = from_schema(SCHEMAS["RealtimeSessionCreateRequestGA"])
TRANSCRIPTIONS = from_schema(SCHEMAS["RealtimeTranscriptionSessionCreateRequestGA"])
TRANSLATIONS = from_schema(SCHEMAS["RealtimeTranslationSessionCreateRequest"])


class TestSchemaDrivenSessions:
    """POST /v1/realtime/client_secrets with sessions drawn from OpenAI's schema."""

    def test_every_schema_valid_session_mints(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A schema-valid session mints under a clamping policy, or is a documented-range 400."""
        policy = {"on_violation": "clamp", "tools_mode": "client", "tracing": "client"}
        app = create_app(
            make_settings(policy=policy), transport=httpx.MockTransport(upstream.async_handler)
        )
        with TestClient(app) as client:

            @settings(
                max_examples=300,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(session=SESSIONS)
            def mints(session: dict[str, Any]) -> None:
                response = client.post(CLIENT_SECRETS, json={"session": session})
                if response.status_code == 400:
                    assert response.json()["error"]["param"] in ALLOWED_400S, response.text
                    return
                assert response.status_code == 200, response.text

            mints()

    def test_every_schema_valid_transcription_and_translation_mints(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Transcription and translation sessions from OpenAI's schemas mint under clamping."""
        app = create_app(
            make_settings(policy={"on_violation": "clamp"}),
            transport=httpx.MockTransport(upstream.async_handler),
        )
        with TestClient(app) as client:

            @settings(
                max_examples=150,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(
                request=st.one_of(
                    TRANSCRIPTIONS.map(lambda session: (CLIENT_SECRETS, session)),
                    TRANSLATIONS.map(lambda session: (TRANSLATION_CLIENT_SECRETS, session)),
                )
            )
            def mints(request: tuple[str, dict[str, Any]]) -> None:
                path, session = request
                response = client.post(path, json={"session": session})
                if response.status_code == 400:
                    assert response.json()["error"]["param"] in ALLOWED_400S, response.text
                    return
                assert response.status_code == 200, response.text

            mints()
