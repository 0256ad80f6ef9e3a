"""Policy for GA-only fields and session kinds: each refusal, its param and its message."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from tests.conftest import ClientFor, MakeSettings, sent_body
from tests.paths import (
    CLIENT_SECRETS,
    POLICY,
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


class TestPrompts:
    """POLICY_PROMPTS, POLICY_PROMPT, POLICY_PROMPT_VARIABLES."""

    async def test_unlisted_prompt(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A prompt id outside POLICY_PROMPTS is refused, naming the setting."""
        error = await refused(
            client_for,
            make_settings,
            {"prompts": "pmpt_a"},
            {"type": "realtime", "prompt": {"id": "pmpt_b"}},
        )
        assert error["param"] == "session.prompt.id"
        assert (
            "prompt 'pmpt_b' is not allowed (allowed: pmpt_a; ops allow prompts with "
            in (error["message"])
        )

    async def test_pinned_prompt_refuses_another(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """With POLICY_PROMPT set, a caller's different prompt is refused."""
        error = await refused(
            client_for,
            make_settings,
            {"prompt": "pmpt_server"},
            {"type": "realtime", "prompt": {"id": "pmpt_mine"}},
        )
        assert error["param"] == "session.prompt"
        assert "the prompt is set by the server (POLICY_PROMPT)" in error["message"]

    async def test_pinned_prompt_is_sent_with_client_variables(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """POLICY_PROMPT is sent on every session; the caller's variables ride along."""
        await minted(
            client_for,
            make_settings,
            {"prompt": "pmpt_server"},
            {
                "session": {
                    "type": "realtime",
                    "prompt": {"id": "pmpt_server", "variables": {"a": "b"}},
                }
            },
        )
        assert sent_body(upstream)["session"]["prompt"] == {
            "id": "pmpt_server",
            "variables": {"a": "b"},
        }

    async def test_variables_off(self, client_for: ClientFor, make_settings: MakeSettings) -> None:
        """POLICY_PROMPT_VARIABLES=off refuses caller variables."""
        error = await refused(
            client_for,
            make_settings,
            {"prompts": "pmpt_a", "prompt_variables": "off"},
            {"type": "realtime", "prompt": {"id": "pmpt_a", "variables": {"x": "y"}}},
        )
        assert error["param"] == "session.prompt.variables"
        assert "POLICY_PROMPT_VARIABLES=off" in error["message"]


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
        """`prompt` on /v1/realtime/sessions is a 400 saying where to send it."""
        response = await client.post(SESSIONS, json={"prompt": {"id": "pmpt_1"}})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "unsupported_parameter"
        assert "POST /v1/realtime/client_secrets" in error["message"]


class TestPublicView:
    """GET /v1/policy shows every new setting."""

    async def test_new_settings_are_shown(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Prompts, efforts, truncation, idle cap, session kinds and languages are listed."""
        client = await client_for(
            make_settings(
                policy={"prompts": "pmpt_a", "prompt": "pmpt_a", "idle_timeout_ms_max": 9000}
            )
        )
        view = (await client.get(POLICY)).json()
        assert view["prompts"] == {"allowed": ["pmpt_a"], "pinned": True, "variables": "client"}
        assert view["reasoning_efforts"] == ["minimal", "low", "medium", "high", "xhigh"]
        assert view["truncation"] == "client"
        assert view["idle_timeout_ms_max"] == 9000
        assert view["session_types"] == ["realtime", "transcription", "translation"]
        assert view["transcription_languages"] == "any"
        assert view["translation_languages"] == "any"
