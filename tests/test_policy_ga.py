"""Policy for GA-only fields and session kinds: each refusal, its param and its message."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from tests.conftest import SDP_OFFER, ClientFor, MakeSettings, sent_body
from tests.paths import (
    CLIENT_SECRETS,
    LIVE_SESSIONS,
    POLICY,
    REALTIME_CALLS,
    SESSIONS,
    TRANSCRIPTION_SESSIONS,
    TRANSLATION_CLIENT_SECRETS,
)

pytestmark = pytest.mark.anyio


async def refused(
    client_for: ClientFor,
    make_settings: MakeSettings,
    policy: dict[str, Any],
    session: dict[str, Any],
    path: str = CLIENT_SECRETS,
) -> dict[str, Any]:
    """The 403 error body for `session` under `policy`."""
    client = await client_for(make_settings(policy=policy))
    body = {"session": session} if path != SESSIONS else session
    response = await client.post(path, json=body)
    assert response.status_code == 403, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "policy_violation"
    return error


async def minted(
    client_for: ClientFor, make_settings: MakeSettings, policy: dict[str, Any], body: Any
) -> httpx.Response:
    client = await client_for(make_settings(policy=policy))
    response: httpx.Response = await client.post(CLIENT_SECRETS, json=body)
    assert response.status_code == 200, response.text
    return response


PROMPT = {"id": "pmpt_1", "version": "3", "variables": {"name": "Ada"}}
PROMPT_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    (CLIENT_SECRETS, {"session": {"type": "realtime", "prompt": PROMPT}}, "session.prompt"),
    (SESSIONS, {"model": "gpt-realtime-2", "prompt": PROMPT}, "prompt"),
    (
        LIVE_SESSIONS,
        {"session": {"prompt": PROMPT}, "transport": {"type": "webrtc", "sdp": SDP_OFFER}},
        "session.prompt",
    ),
]


class TestPromptObjects:
    """OpenAI shut prompt objects down: a session naming one is a 400 saying so, never minted."""

    @pytest.mark.parametrize(("path", "body", "param"), PROMPT_REQUESTS)
    async def test_prompt_is_refused_with_the_reason(
        self,
        client: httpx.AsyncClient,
        upstream: respx.MockRouter,
        path: str,
        body: dict[str, Any],
        param: str,
    ) -> None:
        """Beta, GA and GPT-Live bodies with a `prompt`: 400 naming it and the shutdown."""
        response = await client.post(path, json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "unsupported_parameter",
            param,
        )
        assert "OpenAI shut down reusable prompt objects" in error["message"]
        assert not any(route.called for route in upstream.routes)

    async def test_call_session_part_with_a_prompt_is_refused(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """POST /v1/realtime/calls with a prompt in its session part: the same 400."""
        session = json.dumps({"type": "realtime", "prompt": PROMPT}).encode()
        files = [
            ("sdp", (None, SDP_OFFER.encode(), "application/sdp")),
            ("session", (None, session, "application/json")),
        ]
        response = await client.post(REALTIME_CALLS, files=files)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("unsupported_parameter", "session.prompt")
        assert "2026-11-30" in error["message"]
        assert not upstream.routes["call"].called

    async def test_null_prompt_is_no_prompt(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`prompt: null` (a round-tripped session) mints, and sends no prompt."""
        response = await client.post(
            CLIENT_SECRETS, json={"session": {"type": "realtime", "prompt": None}}
        )
        assert response.status_code == 200, response.text
        assert "prompt" not in sent_body(upstream)["session"]

    async def test_prompt_is_not_in_the_document(self, client: httpx.AsyncClient) -> None:
        """/openapi.json does not offer `prompt`, which every endpoint refuses."""
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
        assert "prompt" not in schemas["RealtimeSession"]["properties"]


class TestReasoningTruncationIdle:
    """POLICY_REASONING_EFFORTS, POLICY_TRUNCATION, POLICY_IDLE_TIMEOUT_MS_MAX."""

    async def test_effort_not_allowed(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """An effort outside POLICY_REASONING_EFFORTS is refused with the allowed list."""
        error = await refused(
            client_for,
            make_settings,
            {"reasoning_efforts": "low,medium"},
            {"type": "realtime", "reasoning": {"effort": "xhigh"}},
        )
        assert error["param"] == "session.reasoning.effort"
        assert "reasoning effort 'xhigh' is not allowed (allowed: low, medium)" in error["message"]

    async def test_truncation_pinned(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """POLICY_TRUNCATION=disabled refuses another truncation."""
        error = await refused(
            client_for,
            make_settings,
            {"truncation": "disabled"},
            {"type": "realtime", "truncation": "auto"},
        )
        assert error["param"] == "session.truncation"
        assert "truncation is set to 'disabled' by the server" in error["message"]

    async def test_truncation_pin_applies(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A pinned truncation is sent when the caller names none."""
        await minted(client_for, make_settings, {"truncation": "disabled"}, {})
        assert sent_body(upstream)["session"]["truncation"] == "disabled"

    async def test_idle_timeout_capped(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """idle_timeout_ms over POLICY_IDLE_TIMEOUT_MS_MAX is refused with the cap."""
        error = await refused(
            client_for,
            make_settings,
            {"idle_timeout_ms_max": 10000},
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 20000}}
                },
            },
        )
        assert error["param"] == "session.audio.input.turn_detection.idle_timeout_ms"
        assert "idle_timeout_ms is capped at 10000" in error["message"]


class TestVoicesAndTools:
    """Custom voices by id; MCP tools only from the server."""

    async def test_unlisted_custom_voice(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A custom voice id outside POLICY_ALLOWED_VOICES is refused by its id."""
        error = await refused(
            client_for,
            make_settings,
            {},
            {"type": "realtime", "audio": {"output": {"voice": {"id": "voice_9"}}}},
        )
        assert error["param"] == "session.audio.output.voice"
        assert "voice 'voice_9' is not allowed" in error["message"]

    async def test_default_custom_voice_is_sent_by_id(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A `voice_...` default voice goes upstream as `{"id": ...}`."""
        policy = {"allowed_voices": "voice_1", "default_voice": "voice_1"}
        await minted(client_for, make_settings, policy, {})
        assert sent_body(upstream)["session"]["audio"]["output"]["voice"] == {"id": "voice_1"}

    async def test_custom_voice_by_id_is_forwarded_without_a_decision(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """An allowed `{"id": "voice_..."}` goes upstream as sent; the policy reports nothing."""
        response = await minted(
            client_for,
            make_settings,
            {"allowed_voices": "alloy,voice_7"},
            {"session": {"type": "realtime", "audio": {"output": {"voice": {"id": "voice_7"}}}}},
        )
        assert sent_body(upstream)["session"]["audio"]["output"]["voice"] == {"id": "voice_7"}
        assert response.headers["x-policy-decisions"] == "model=default"

    async def test_custom_voice_id_as_a_string_is_sent_as_an_object(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """`voice: "voice_7"` is sent as `{"id": "voice_7"}`, the shape of GA custom voices."""
        await minted(
            client_for,
            make_settings,
            {"allowed_voices": "alloy,voice_7"},
            {"session": {"type": "realtime", "audio": {"output": {"voice": "voice_7"}}}},
        )
        assert sent_body(upstream)["session"]["audio"]["output"]["voice"] == {"id": "voice_7"}

    async def test_caller_mcp_tool(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A caller's MCP tool is refused, naming POLICY_MCP_SERVERS_FILE."""
        tool = {"type": "mcp", "server_label": "crm", "server_url": "https://mcp.example"}
        error = await refused(
            client_for,
            make_settings,
            {"tools_mode": "client"},
            {"type": "realtime", "tools": [tool]},
        )
        assert error["param"] == "session.tools"
        assert "MCP server 'crm' is not offered (offered: none)" in error["message"]
        assert "POLICY_MCP_SERVERS_FILE" in error["message"]

    async def test_mcp_tool_choice(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """tool_choice naming an MCP server the session lacks is refused."""
        error = await refused(
            client_for,
            make_settings,
            {},
            {"type": "realtime", "tool_choice": {"type": "mcp", "server_label": "crm"}},
        )
        assert error["param"] == "session.tool_choice"
        assert "MCP server 'crm'" in error["message"]


class TestSessionKinds:
    """POLICY_SESSION_TYPES and the transcription/translation lists."""

    @pytest.mark.parametrize(
        ("kind", "path", "session"),
        [
            ("realtime", CLIENT_SECRETS, {"type": "realtime"}),
            ("transcription", CLIENT_SECRETS, {"type": "transcription"}),
            ("translation", TRANSLATION_CLIENT_SECRETS, {"model": "gpt-realtime-translate"}),
        ],
    )
    async def test_kind_turned_off(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        kind: str,
        path: str,
        session: dict[str, Any],
    ) -> None:
        """A session kind missing from POLICY_SESSION_TYPES is refused whole."""
        others = ",".join(k for k in ("realtime", "transcription", "translation") if k != kind)
        error = await refused(client_for, make_settings, {"session_types": others}, session, path)
        assert error["param"] == "session.type"
        assert f"{kind} sessions are not allowed" in error["message"]
        assert "POLICY_SESSION_TYPES" in error["message"]

    async def test_transcription_language(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A language outside POLICY_TRANSCRIPTION_LANGUAGES is refused."""
        error = await refused(
            client_for,
            make_settings,
            {"transcription_languages": "en,de"},
            {"type": "transcription", "audio": {"input": {"transcription": {"language": "fr"}}}},
        )
        assert error["param"] == "session.audio.input.transcription.language"
        assert "language 'fr' is not allowed (allowed: en, de)" in error["message"]

    async def test_transcription_model_on_beta_door(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """The beta transcription endpoint names refused fields in its own shape."""
        client = await client_for(
            make_settings(policy={"allowed_transcription_models": "whisper-1"})
        )
        response = await client.post(
            TRANSCRIPTION_SESSIONS,
            json={"input_audio_transcription": {"model": "gpt-4o-transcribe"}},
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"]["param"] == "input_audio_transcription.model"

    async def test_translation_model(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A translation model outside POLICY_ALLOWED_TRANSLATION_MODELS is refused."""
        error = await refused(
            client_for, make_settings, {}, {"model": "gpt-other"}, TRANSLATION_CLIENT_SECRETS
        )
        assert error["param"] == "session.model"
        assert "translation model 'gpt-other' is not allowed" in error["message"]

    async def test_translation_language(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A target language outside POLICY_TRANSLATION_LANGUAGES is refused."""
        error = await refused(
            client_for,
            make_settings,
            {"translation_languages": "es"},
            {"model": "gpt-realtime-translate", "audio": {"output": {"language": "de"}}},
            TRANSLATION_CLIENT_SECRETS,
        )
        assert error["param"] == "session.audio.output.language"
        assert "target language 'de' is not allowed (allowed: es)" in error["message"]

    async def test_empty_language_list_allows_none(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """`POLICY_TRANSLATION_LANGUAGES=` (set, empty) allows no target language."""
        error = await refused(
            client_for,
            make_settings,
            {"translation_languages": ""},
            {"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}},
            TRANSLATION_CLIENT_SECRETS,
        )
        assert "(allowed: none)" in error["message"]


class TestBetaDoor:
    """GA-only fields on the beta endpoint point to the GA endpoint."""

    async def test_ga_field_on_beta_endpoint(self, client: httpx.AsyncClient) -> None:
        """`reasoning` on /v1/realtime/sessions is a 400 saying where to send it."""
        response = await client.post(SESSIONS, json={"reasoning": {"effort": "low"}})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "unsupported_parameter"
        assert "POST /v1/realtime/client_secrets" in error["message"]


class TestPublicView:
    """GET /v1/policy shows every new setting."""

    async def test_new_settings_are_shown(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Efforts, truncation, idle cap, session kinds and languages are listed."""
        client = await client_for(make_settings(policy={"idle_timeout_ms_max": 9000}))
        view = (await client.get(POLICY)).json()
        assert "prompts" not in view
        assert view["reasoning_efforts"] == ["minimal", "low", "medium", "high", "xhigh"]
        assert view["truncation"] == "client"
        assert view["idle_timeout_ms_max"] == 9000
        assert view["session_types"] == ["realtime", "transcription", "translation"]
        assert view["transcription_languages"] == "any"
        assert view["translation_languages"] == "any"
