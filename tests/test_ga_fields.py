"""POST /v1/realtime/client_secrets: every field of OpenAI's GA realtime session is accepted.

One case per field, each sent under a policy that allows it, checked for what
reaches OpenAI (the body validates against the published schema in the
`upstream` fixture) and, for nulls and defaults, for what is left out.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from tests.conftest import ClientFor, MakeSettings, sent_body
from tests.paths import CLIENT_SECRETS

pytestmark = pytest.mark.anyio
OPEN_POLICY: dict[str, Any] = {
    "allowed_voices": "alloy,marin,voice_123",
    "tools_mode": "client",
    "tracing": "client",
}
FUNCTION = {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}

FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("model", {"model": "gpt-realtime-2.1-mini"}),
    ("instructions", {"instructions": "Be brief."}),
    ("output_modalities", {"output_modalities": ["text"]}),
    ("max_output_tokens", {"max_output_tokens": 512}),
    ("max_output_tokens_inf", {"max_output_tokens": "inf"}),
    ("reasoning", {"reasoning": {"effort": "low"}}),
    ("parallel_tool_calls", {"parallel_tool_calls": False}),
    ("truncation_disabled", {"truncation": "disabled"}),
    ("truncation_auto", {"truncation": "auto"}),
    (
        "truncation_retention_ratio",
        {
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.8,
                "token_limits": {"post_instructions": 5000},
            }
        },
    ),
    ("include", {"include": ["item.input_audio_transcription.logprobs"]}),
    ("tools", {"tools": [FUNCTION]}),
    (
        "tool_choice_function",
        {"tools": [FUNCTION], "tool_choice": {"type": "function", "name": "f"}},
    ),
    ("tool_choice_option", {"tool_choice": "required"}),
    ("tracing_auto", {"tracing": "auto"}),
    ("tracing_config", {"tracing": {"workflow_name": "w", "group_id": "g"}}),
    ("input_format", {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}),
    ("output_format", {"audio": {"output": {"format": {"type": "audio/pcma"}}}}),
    (
        "noise_reduction_strength",
        {"audio": {"input": {"noise_reduction": {"type": "far_field", "strength": 0.5}}}},
    ),
    (
        "transcription_fields",
        {
            "audio": {
                "input": {
                    "transcription": {
                        "model": "gpt-transcribe",
                        "language": "en",
                        "languages": ["en", "fr"],
                        "keywords": ["Acme"],
                        "prompt": "tech",
                        "delay": "low",
                    }
                }
            }
        },
    ),
    (
        "server_vad_idle_timeout",
        {
            "audio": {
                "input": {
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.4,
                        "prefix_padding_ms": 200,
                        "silence_duration_ms": 400,
                        "create_response": True,
                        "interrupt_response": False,
                        "idle_timeout_ms": 6000,
                    }
                }
            }
        },
    ),
    (
        "semantic_vad",
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}},
    ),
    ("turn_detection_off", {"audio": {"input": {"turn_detection": None}}}),
    ("speed", {"audio": {"output": {"speed": 1.2}}}),
    ("custom_voice", {"audio": {"output": {"voice": {"id": "voice_123"}}}}),
]


class TestEveryGaFieldIsAccepted:
    """A GA field the policy allows reaches OpenAI exactly as the caller sent it."""

    @pytest.mark.parametrize(("field", "session"), FIELDS, ids=[name for name, _ in FIELDS])
    async def test_field_is_forwarded(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        field: str,
        session: dict[str, Any],
    ) -> None:
        """Each GA field mints and is sent upstream unchanged."""
        client = await client_for(make_settings(policy=OPEN_POLICY))
        response = await client.post(
            CLIENT_SECRETS, json={"session": {"type": "realtime", **session}}
        )
        assert response.status_code == 200, response.text
        sent = sent_body(upstream)["session"]
        for key, value in session.items():
            if key == "audio":
                for side, settings in value.items():
                    for name, item in settings.items():
                        assert sent["audio"][side][name] == item, field
            elif key == "tracing":
                assert sent["tracing"]["metadata"]["caller"], field
            else:
                assert sent[key] == value, field


NULLS_AND_DEFAULTS: dict[str, Any] = {
    "prompt": None,
    "include": None,
    "reasoning": None,
    "truncation": None,
    "tracing": None,
    "parallel_tool_calls": None,
    "tools": [],
    "tool_choice": None,
    "instructions": None,
    "max_output_tokens": None,
    "audio": {
        "input": {
            "noise_reduction": None,
            "transcription": None,
            "format": None,
            "turn_detection": {"type": "server_vad", "idle_timeout_ms": None},
        },
        "output": {"voice": None, "speed": None, "format": None},
    },
}


class TestNullsAndDefaults:
    """`null` and the API's defaults are no-ops: accepted, and left out where GA takes no null."""

    async def test_nulls_are_accepted_and_left_out(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Every nullable field sent as null mints; the upstream body carries none of them."""
        response = await client.post(
            CLIENT_SECRETS, json={"session": {"type": "realtime", **NULLS_AND_DEFAULTS}}
        )
        assert response.status_code == 200, response.text
        assert sent_body(upstream)["session"] == {
            "type": "realtime",
            "model": "gpt-realtime-2",
            "tools": [],
            "audio": {
                "input": {"turn_detection": {"type": "server_vad"}},
                "output": {"voice": "alloy"},
            },
        }

    async def test_truncation_auto_under_default_policy(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`truncation: "auto"`, the API's default, mints under the default policy."""
        response = await client.post(
            CLIENT_SECRETS, json={"session": {"type": "realtime", "truncation": "auto"}}
        )
        assert response.status_code == 200, response.text
        assert sent_body(upstream)["session"]["truncation"] == "auto"


class TestRoundTrip:
    """The `session` the GA endpoint returned is accepted back as a request."""

    async def test_server_tools_sent_back_are_not_a_choice(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Under POLICY_TOOLS_MODE=server, the server's own tools echoed back still mint."""
        client = await client_for(make_settings(policy={"tools": [FUNCTION]}))
        first = (await client.post(CLIENT_SECRETS, json={"session": {"type": "realtime"}})).json()
        again = await client.post(CLIENT_SECRETS, json={"session": first["session"]})
        assert again.status_code == 200, again.text
        assert sent_body(upstream)["session"]["tools"] == [FUNCTION]

    async def test_every_field_round_trips(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A session using every GA field, as returned, mints again to the same upstream body."""
        client = await client_for(make_settings(policy=OPEN_POLICY))
        session: dict[str, Any] = {"type": "realtime"}
        for _, fields in FIELDS:
            session.update({k: v for k, v in fields.items() if k != "audio"})
        session["audio"] = {
            "input": {
                "format": {"type": "audio/pcmu"},
                "noise_reduction": {"type": "far_field", "strength": 0.5},
                "turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000},
            },
            "output": {"voice": {"id": "voice_123"}, "speed": 1.2},
        }
        first = await client.post(CLIENT_SECRETS, json={"session": session})
        assert first.status_code == 200, first.text
        sent = sent_body(upstream)
        again = await client.post(CLIENT_SECRETS, json={"session": first.json()["session"]})
        assert again.status_code == 200, again.text
        assert sent_body(upstream) == sent
