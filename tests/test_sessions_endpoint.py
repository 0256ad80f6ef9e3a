"""POST /v1/realtime/sessions: the beta-shaped endpoint, translated to GA upstream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from service.server.compose import build_app
from tests.conftest import API_KEY, CLIENT_SECRET, ClientFor, MakeSettings, sent_body, serving
from tests.paths import SESSIONS

pytestmark = pytest.mark.anyio


async def mint(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(SESSIONS, json=body)


class TestTranslation:
    """The exact GA body sent for seed fields."""

    async def test_minimal_request_gets_server_defaults(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """An empty session is minted with the default model, voice and TTL."""
        response = await mint(client, {})
        assert response.status_code == 200
        assert sent_body(upstream) == {
            "expires_after": {"anchor": "created_at", "seconds": 60},
            "session": {
                "type": "realtime",
                "model": "gpt-realtime-2",
                "audio": {"output": {"voice": "alloy"}},
            },
        }

    async def test_every_seed_field_maps_to_its_ga_place(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Formats become objects, audio settings nest, modalities and tokens are renamed."""
        await mint(
            client,
            {
                "model": "gpt-realtime-2.1-mini",
                "voice": "ash",
                "instructions": "Be brief.",
                "modalities": ["text", "audio"],
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "g711_alaw",
                "input_audio_noise_reduction": {"type": "far_field"},
                "input_audio_transcription": {"model": "gpt-transcribe", "language": "en"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.7,
                    "silence_duration_ms": 400,
                },
                "speed": 1.2,
                "max_response_output_tokens": 512,
            },
        )
        assert sent_body(upstream)["session"] == {
            "type": "realtime",
            "model": "gpt-realtime-2.1-mini",
            "instructions": "Be brief.",
            "output_modalities": ["audio"],
            "max_output_tokens": 512,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "noise_reduction": {"type": "far_field"},
                    "transcription": {"model": "gpt-transcribe", "language": "en"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.7,
                        "silence_duration_ms": 400,
                    },
                },
                "output": {"format": {"type": "audio/pcma"}, "voice": "ash", "speed": 1.2},
            },
        }

    async def test_pcm16_becomes_pcm_at_24khz(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`pcm16` is written as `{"type": "audio/pcm", "rate": 24000}`."""
        await mint(client, {"input_audio_format": "pcm16"})
        assert sent_body(upstream)["session"]["audio"]["input"]["format"] == {
            "type": "audio/pcm",
            "rate": 24000,
        }

    async def test_text_only_modalities(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`["text"]` stays text-only as `output_modalities`."""
        await mint(client, {"modalities": ["text"]})
        assert sent_body(upstream)["session"]["output_modalities"] == ["text"]

    async def test_null_turn_detection_is_sent_as_null(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """An explicit null turns VAD off upstream instead of falling back to the default."""
        await mint(client, {"turn_detection": None})
        assert sent_body(upstream)["session"]["audio"]["input"] == {"turn_detection": None}

    async def test_semantic_vad_keeps_its_eagerness(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Semantic VAD is sent with its own fields only."""
        await mint(client, {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}})
        assert sent_body(upstream)["session"]["audio"]["input"]["turn_detection"] == {
            "type": "semantic_vad",
            "eagerness": "low",
        }

    async def test_turn_detection_without_type_is_server_vad(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The seed's optional type defaults to server_vad, which GA requires spelled out."""
        await mint(client, {"turn_detection": {"threshold": 0.2}})
        assert sent_body(upstream)["session"]["audio"]["input"]["turn_detection"] == {
            "type": "server_vad",
            "threshold": 0.2,
        }

    async def test_tool_choice_naming_a_function(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A function name in tool_choice becomes GA's function object."""
        client = await client_for(make_settings(policy={"tools_mode": "client"}))
        tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
        await mint(client, {"tools": [tool], "tool_choice": "lookup"})
        session = sent_body(upstream)["session"]
        assert session["tools"] == [tool]
        assert session["tool_choice"] == {"type": "function", "name": "lookup"}

    async def test_temperature_is_refused_not_dropped(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """GA has no temperature: a 400 says so and nothing is minted."""
        response = await mint(client, {"temperature": 0.8})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "temperature"
        assert response.json()["error"]["code"] == "unsupported_parameter"
        assert not upstream.routes["mint"].called

    async def test_eagerness_on_server_vad_is_refused(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A semantic-only field on server VAD cannot be carried: 400 naming it."""
        response = await mint(
            client, {"turn_detection": {"type": "server_vad", "eagerness": "high"}}
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "turn_detection.eagerness"
        assert not upstream.routes["mint"].called

    async def test_azure_uses_api_key_header_and_deployment_name(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Azure mode sends `api-key` and the deployment name, and maps it back."""
        settings = make_settings(
            upstream_api_type="azure", upstream_model_map="gpt-realtime-2=my-rt-deployment"
        )
        client = await client_for(settings)
        response = await mint(client, {})
        request = upstream.routes["mint"].calls.last.request
        assert request.headers["api-key"] == API_KEY
        assert "authorization" not in request.headers
        assert sent_body(upstream)["session"]["model"] == "my-rt-deployment"
        assert response.json()["model"] == "gpt-realtime-2"


class TestResponse:
    """What a beta-era frontend reads back."""

    async def test_beta_shape_with_client_secret(self, client: httpx.AsyncClient) -> None:
        """The answer is seed-shaped with `client_secret.value` and `expires_at`."""
        response = await mint(client, {"voice": "verse", "input_audio_format": "g711_ulaw"})
        body = response.json()
        assert body["client_secret"] == {"value": CLIENT_SECRET, "expires_at": 1_900_000_000}
        assert body["id"] == "sess_test_1"
        assert body["voice"] == "verse"
        assert body["input_audio_format"] == "g711_ulaw"

    async def test_mint_is_not_cacheable(self, client: httpx.AsyncClient) -> None:
        """A secret must never sit in a shared cache."""
        response = await mint(client, {})
        assert response.headers["cache-control"] == "no-store"

    async def test_request_id_is_echoed_and_sent_upstream(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The caller's X-Request-ID comes back and reaches OpenAI."""
        response = await client.post(SESSIONS, json={}, headers={"X-Request-ID": "req-42"})
        assert response.headers["x-request-id"] == "req-42"
        assert upstream.routes["mint"].calls.last.request.headers["x-request-id"] == "req-42"

    async def test_ttl_from_client_secret_expires_after(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`client_secret.expires_after.seconds` sets the GA expiry."""
        await mint(
            client, {"client_secret": {"expires_after": {"anchor": "created_at", "seconds": 120}}}
        )
        assert sent_body(upstream)["expires_after"] == {"anchor": "created_at", "seconds": 120}


class TestDryRun:
    """`?dry_run=true` shows the effective session and mints nothing."""

    async def test_dry_run_mints_nothing(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The effective session and decisions come back; OpenAI is not called."""
        response = await client.post(f"{SESSIONS}?dry_run=true", json={"voice": "sage"})
        body = response.json()
        assert response.status_code == 200
        assert body["dry_run"] is True
        assert body["session"] == {"model": "gpt-realtime-2", "voice": "sage"}
        assert {
            "param": "model",
            "action": "default",
            "reason": "server default model",
            "applied": "gpt-realtime-2",
        } in body["policy_decisions"]
        assert not upstream.routes["mint"].called

    async def test_dry_run_violation_answers_like_the_real_request(
        self, client: httpx.AsyncClient
    ) -> None:
        """A dry run of a forbidden voice gets the same 403 as the mint."""
        real = await mint(client, {"voice": "robot"})
        dry = await client.post(f"{SESSIONS}?dry_run=true", json={"voice": "robot"})
        assert dry.status_code == real.status_code == 403
        assert dry.json() == real.json()

    async def test_bad_dry_run_value_is_a_400(self, client: httpx.AsyncClient) -> None:
        """A query value that is not a boolean is named in the envelope."""
        response = await client.post(f"{SESSIONS}?dry_run=maybe", json={})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "dry_run"


class TestRoundTrip:
    """What /v1/realtime/sessions answered is accepted back as a request."""

    async def test_answer_sent_back_mints(self, make_settings: MakeSettings) -> None:
        """The emulator-backed answer (id, object, client_secret, decisions, nulls) mints again."""
        settings = make_settings(upstream_emulator=True, openai_api_key=None)
        async with serving(build_app(settings)) as client:
            first = await client.post(SESSIONS, json={"voice": "marin", "speed": 1.1})
            assert first.status_code == 200, first.text
            again = await client.post(SESSIONS, json=first.json())
        assert again.status_code == 200, again.text
        assert again.json()["voice"] == "marin"
        assert again.json()["client_secret"]["value"] != first.json()["client_secret"]["value"]
