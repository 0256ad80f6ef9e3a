"""POST /v1/realtime/client_secrets: OpenAI's GA shapes, under the same policy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from tests.conftest import CLIENT_SECRET, ClientFor, MakeSettings, sent_body
from tests.contract import ga_errors
from tests.paths import CLIENT_SECRETS, SESSIONS

pytestmark = pytest.mark.anyio
GA_REQUEST: dict[str, Any] = {
    "expires_after": {"anchor": "created_at", "seconds": 120},
    "session": {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "instructions": "Be kind.",
        "output_modalities": ["audio"],
        "max_output_tokens": 800,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "gpt-transcribe", "prompt": "tech words"},
                "turn_detection": {"type": "semantic_vad", "eagerness": "auto"},
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 0.9},
        },
        "tool_choice": "none",
    },
}


class TestGaEndpoint:
    """GA request in, GA response out."""

    async def test_ga_request_is_forwarded_unchanged(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A GA body the policy allows reaches OpenAI exactly as sent."""
        response = await client.post(CLIENT_SECRETS, json=GA_REQUEST)
        assert response.status_code == 200
        assert sent_body(upstream) == GA_REQUEST

    async def test_ga_response_shape(self, client: httpx.AsyncClient) -> None:
        """The answer is OpenAI's: value, expires_at, session."""
        body = (await client.post(CLIENT_SECRETS, json=GA_REQUEST)).json()
        assert body["value"] == CLIENT_SECRET
        assert body["expires_at"] == 1_900_000_000
        assert body["session"]["id"] == "sess_test_1"
        assert not ga_errors(body, "RealtimeCreateClientSecretResponse")

    async def test_empty_body_object_gets_defaults(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`{}` mints a realtime session with the policy's defaults."""
        await client.post(CLIENT_SECRETS, json={})
        assert sent_body(upstream)["session"] == {
            "type": "realtime",
            "model": "gpt-realtime-2",
            "audio": {"output": {"voice": "alloy"}},
        }

    async def test_violation_names_the_ga_param(self, client: httpx.AsyncClient) -> None:
        """Policy errors on this endpoint use GA paths."""
        response = await client.post(
            CLIENT_SECRETS,
            json={"session": {"type": "realtime", "audio": {"output": {"voice": "robot"}}}},
        )
        assert response.status_code == 403
        assert response.json()["error"]["param"] == "session.audio.output.voice"

    async def test_same_policy_as_beta_endpoint(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A rule applies to both endpoints alike."""
        client = await client_for(make_settings(policy={"allowed_models": "gpt-realtime-2"}))
        ga = await client.post(
            CLIENT_SECRETS, json={"session": {"type": "realtime", "model": "gpt-realtime-2.1-mini"}}
        )
        beta = await client.post(SESSIONS, json={"model": "gpt-realtime-2.1-mini"})
        assert ga.status_code == beta.status_code == 403

    async def test_prompt_object_is_refused_as_shut_down(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A dashboard prompt is a 400 naming `session.prompt`: OpenAI shut prompt objects down."""
        response = await client.post(
            CLIENT_SECRETS, json={"session": {"type": "realtime", "prompt": {"id": "pmpt_1"}}}
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "session.prompt"
        assert "prompt objects" in error["message"]
        assert not upstream.routes["mint"].called

    async def test_transcription_session_mints_with_the_default_model(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`session.type: "transcription"` mints a transcription token with the server's model."""
        response = await client.post(CLIENT_SECRETS, json={"session": {"type": "transcription"}})
        assert response.status_code == 200, response.text
        assert sent_body(upstream)["session"] == {
            "type": "transcription",
            "audio": {"input": {"transcription": {"model": "gpt-transcribe"}}},
        }

    async def test_both_modalities_are_refused(self, client: httpx.AsyncClient) -> None:
        """GA accepts one output modality, as the live API does."""
        response = await client.post(
            CLIENT_SECRETS,
            json={"session": {"type": "realtime", "output_modalities": ["audio", "text"]}},
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "session.output_modalities"

    async def test_dry_run_shows_the_upstream_body(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A GA dry run returns the exact body that would be sent, and mints nothing."""
        response = await client.post(f"{CLIENT_SECRETS}?dry_run=true", json=GA_REQUEST)
        body = response.json()
        assert body["dry_run"] is True
        assert body["session"] == GA_REQUEST["session"]
        assert body["expires_after"] == GA_REQUEST["expires_after"]
        assert not upstream.routes["mint"].called

    async def test_policy_decisions_travel_in_a_header(self, client: httpx.AsyncClient) -> None:
        """The GA body stays OpenAI's; what the policy did is in X-Policy-Decisions."""
        response = await client.post(CLIENT_SECRETS, json={"session": {"type": "realtime"}})
        assert response.headers["x-policy-decisions"] == "model=default, voice=default"
