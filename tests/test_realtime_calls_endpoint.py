"""`POST /v1/realtime/calls`: the browser's offer in, a call created with the server's key.

OpenAI is mocked by respx (tests/conftest.py); every call it receives is
checked as the openai SDK would send it: multipart `sdp` + `session`, the
session valid against OpenAI's `RealtimeSessionCreateRequestGA`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import respx

from service.auth import new_api_key
from tests.conftest import (
    API_KEY,
    CALL_ID,
    SDP_ANSWER,
    SDP_OFFER,
    SERVER_INSTRUCTIONS,
    ClientFor,
    MakeSettings,
)
from tests.contract import call_parts
from tests.paths import METRICS, REALTIME_CALLS
from tests.suite_logs import captured_logs

pytestmark = pytest.mark.anyio


def multipart(session: dict[str, Any] | None = None, sdp: str = SDP_OFFER) -> Any:
    """The parts the openai SDK sends: `sdp`, and `session` as JSON."""
    files: list[tuple[str, Any]] = [("sdp", (None, sdp.encode(), "application/sdp"))]
    if session is not None:
        files.append(("session", (None, json.dumps(session).encode(), "application/json")))
    return files


def sent_session(upstream: respx.MockRouter) -> dict[str, Any]:
    """The session part of the last call that reached OpenAI."""
    request = upstream.routes["call"].calls.last.request
    session: dict[str, Any] = json.loads(call_parts(request)["session"][1])
    return session


def assert_error(response: httpx.Response, status: int, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error


class TestCreate:
    """A valid offer becomes a call: 201, the SDP answer, the call's Location."""

    async def test_multipart_answers_201_with_answer_and_location(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Multipart offer + session: 201 application/sdp, Location, decisions, no-store."""
        session = {"type": "realtime", "audio": {"output": {"voice": "marin"}}}
        response = await client.post(REALTIME_CALLS, files=multipart(session))
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/sdp")
        assert response.text == SDP_ANSWER
        assert response.headers["location"] == f"/v1/realtime/calls/{CALL_ID}"
        assert response.headers["x-policy-decisions"] == "model=default"
        assert response.headers["cache-control"] == "no-store"
        sent = sent_session(upstream)
        assert sent["model"] == "gpt-realtime-2"
        assert sent["audio"]["output"]["voice"] == "marin"

    async def test_upstream_gets_the_server_key_and_the_offer(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The call is created with the server's key; the offer is passed on unchanged."""
        await client.post(REALTIME_CALLS, files=multipart({"type": "realtime"}))
        request = upstream.routes["call"].calls.last.request
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert call_parts(request)["sdp"][1].decode() == SDP_OFFER

    async def test_bare_sdp_offer_gets_the_policy_defaults(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`Content-Type: application/sdp`: the session is the policy's defaults."""
        response = await client.post(
            REALTIME_CALLS, content=SDP_OFFER, headers={"Content-Type": "application/sdp"}
        )
        assert response.status_code == 201, response.text
        assert sent_session(upstream) == {
            "type": "realtime",
            "model": "gpt-realtime-2",
            "audio": {"output": {"voice": "alloy"}},
        }

    async def test_server_instructions_reach_upstream_only(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Server-set instructions go upstream, never into the answer or its headers."""
        client = await client_for(
            make_settings(
                policy={"instructions": SERVER_INSTRUCTIONS, "instructions_mode": "server"}
            )
        )
        response = await client.post(REALTIME_CALLS, files=multipart({"type": "realtime"}))
        assert response.status_code == 201, response.text
        assert sent_session(upstream)["instructions"] == SERVER_INSTRUCTIONS
        assert SERVER_INSTRUCTIONS not in response.text + str(response.headers)


class TestPolicy:
    """The client-secret endpoints' policy, unchanged."""

    async def test_refused_voice_is_403_and_no_call(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A voice outside POLICY_ALLOWED_VOICES: 403 naming it; OpenAI never asked."""
        client = await client_for(make_settings(policy={"allowed_voices": "alloy"}))
        session = {"type": "realtime", "audio": {"output": {"voice": "verse"}}}
        response = await client.post(REALTIME_CALLS, files=multipart(session))
        assert_error(response, 403, "policy_violation", "session.audio.output.voice")
        assert not upstream.routes["call"].called

    async def test_dry_run_shows_the_session_and_creates_nothing(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """`?dry_run=true`: 200 JSON, the effective session (instructions redacted), no call."""
        client = await client_for(
            make_settings(
                policy={"instructions": SERVER_INSTRUCTIONS, "instructions_mode": "server"}
            )
        )
        response = await client.post(
            f"{REALTIME_CALLS}?dry_run=true", files=multipart({"type": "realtime"})
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["dry_run"] is True
        assert answer["session"]["model"] == "gpt-realtime-2"
        assert SERVER_INSTRUCTIONS not in response.text
        assert "expires_after" not in answer
        assert not upstream.routes["call"].called

    async def test_rate_limit_counts_calls_like_mints(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """RATE_LIMIT_PER_IDENTITY=1/minute: the second call is 429 and never created."""
        client = await client_for(make_settings(rate_limit_per_identity="1/minute"))
        first = await client.post(REALTIME_CALLS, files=multipart({"type": "realtime"}))
        second = await client.post(REALTIME_CALLS, files=multipart({"type": "realtime"}))
        assert (first.status_code, second.status_code) == (201, 429)
        assert "retry-after" in second.headers
        assert upstream.routes["call"].call_count == 1


class TestBareOfferModel:
    """A bare `application/sdp` offer names its model as OpenAI's does: `?model=`."""

    SDP_HEADERS = {"Content-Type": "application/sdp"}  # noqa: RUF012 - read only

    async def test_query_model_chooses_an_allowed_model(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`?model=` of an allowed model is the model the call is created with."""
        response = await client.post(
            f"{REALTIME_CALLS}?model=gpt-realtime-2.1-mini",
            content=SDP_OFFER,
            headers=self.SDP_HEADERS,
        )
        assert response.status_code == 201, response.text
        assert sent_session(upstream)["model"] == "gpt-realtime-2.1-mini"

    async def test_refused_query_model_is_the_json_bodys_403_naming_model(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A model the policy refuses: the 403 a session part gets, naming `model`; no call."""
        refused = "gpt-4o-realtime-preview"
        by_query = await client.post(
            f"{REALTIME_CALLS}?model={refused}", content=SDP_OFFER, headers=self.SDP_HEADERS
        )
        by_session = await client.post(
            REALTIME_CALLS, files=multipart({"type": "realtime", "model": refused})
        )
        assert_error(by_query, 403, "policy_violation", "model")
        assert_error(by_session, 403, "policy_violation", "session.model")
        named_as_sent = by_session.text.replace('"session.model', '"model')
        named_as_sent = named_as_sent.replace("violation: session.model:", "violation: model:")
        assert by_query.json() == json.loads(named_as_sent)
        assert not upstream.routes["call"].called

    async def test_dry_run_shows_the_query_model(self, client: httpx.AsyncClient) -> None:
        """`?model=…&dry_run=true` shows the effective session with that model."""
        response = await client.post(
            f"{REALTIME_CALLS}?model=gpt-realtime-2.1-mini&dry_run=true",
            content=SDP_OFFER,
            headers=self.SDP_HEADERS,
        )
        assert response.status_code == 200, response.text
        assert response.json()["session"]["model"] == "gpt-realtime-2.1-mini"

    async def test_empty_query_model_is_400(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """`?model=` with no value: 400 naming `model`, not the policy's default in silence."""
        response = await client.post(
            f"{REALTIME_CALLS}?model=", content=SDP_OFFER, headers=self.SDP_HEADERS
        )
        assert_error(response, 400, "invalid_value", "model")
        assert not upstream.routes["call"].called

    async def test_query_model_beside_multipart_is_400(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A multipart offer names its model in `session`; a `?model=` beside it is a 400."""
        response = await client.post(
            f"{REALTIME_CALLS}?model=gpt-realtime-2", files=multipart({"type": "realtime"})
        )
        assert_error(response, 400, "unknown_parameter", "model")
        assert not upstream.routes["call"].called


class TestBadInput:
    """Every malformed request is a 400 (or 401/413/415) in OpenAI's envelope, and no call."""

    async def test_missing_sdp_part(self, client: httpx.AsyncClient) -> None:
        """A multipart body without `sdp`: 400 invalid_sdp naming sdp."""
        files = [("session", (None, b'{"type": "realtime"}', "application/json"))]
        response = await client.post(REALTIME_CALLS, files=files)
        assert_error(response, 400, "invalid_sdp", "sdp")

    @pytest.mark.parametrize(
        "offer",
        [b"hello", b"", b"\xff\xfe v=0", b"v=0\r\n\x00"],
        ids=["not-sdp", "empty", "not-utf8", "nul-byte"],
    )
    async def test_not_an_offer(self, client: httpx.AsyncClient, offer: bytes) -> None:
        """A body that cannot be an SDP offer: 400 invalid_sdp."""
        response = await client.post(
            REALTIME_CALLS, content=offer, headers={"Content-Type": "application/sdp"}
        )
        assert_error(response, 400, "invalid_sdp", "sdp")

    async def test_offer_over_calls_max_sdp_bytes(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """An offer over CALLS_MAX_SDP_BYTES: 400 invalid_sdp, its size named."""
        client = await client_for(make_settings(calls_max_sdp_bytes=2048))
        offer = SDP_OFFER + "a=x-padding:" + "0" * 2048 + "\r\n"
        response = await client.post(REALTIME_CALLS, files=multipart(sdp=offer))
        assert_error(response, 400, "invalid_sdp", "sdp")
        assert "2048-byte" in response.json()["error"]["message"]

    async def test_body_over_every_limit_is_413(self, client: httpx.AsyncClient) -> None:
        """A body larger than the session and SDP limits together: 413 before parsing."""
        response = await client.post(
            REALTIME_CALLS,
            content=b"v=0\r\n" + b"a" * 300_000,
            headers={"Content-Type": "application/sdp"},
        )
        assert response.status_code == 413

    async def test_session_with_unknown_field(self, client: httpx.AsyncClient) -> None:
        """The session part is parsed strictly: an unknown field is named with its path."""
        response = await client.post(
            REALTIME_CALLS, files=multipart({"type": "realtime", "colour": "blue"})
        )
        assert_error(response, 400, "unknown_parameter", "session.colour")

    async def test_session_not_json(self, client: httpx.AsyncClient) -> None:
        """A session part that is not JSON: 400 invalid_json naming session."""
        files = [
            ("sdp", (None, SDP_OFFER.encode(), "application/sdp")),
            ("session", (None, b"{not json", "application/json")),
        ]
        response = await client.post(REALTIME_CALLS, files=files)
        assert_error(response, 400, "invalid_json", "session")

    async def test_unknown_part(self, client: httpx.AsyncClient) -> None:
        """A part other than sdp and session: 400 unknown_parameter."""
        files = [*multipart(), ("model", (None, b"gpt-realtime-2", "text/plain"))]
        response = await client.post(REALTIME_CALLS, files=files)
        assert_error(response, 400, "unknown_parameter", "model")

    async def test_json_body_is_415(self, client: httpx.AsyncClient) -> None:
        """A JSON body: 415 naming the two media types that work."""
        response = await client.post(REALTIME_CALLS, json={"sdp": SDP_OFFER})
        assert response.status_code == 415
        assert "application/sdp" in response.json()["error"]["message"]

    async def test_client_secret_as_caller_credential_is_401(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """An `ek_` sent as the caller's credential is refused, even with AUTH_MODE=none."""
        client = await client_for(make_settings(auth_mode="none"))
        response = await client.post(
            REALTIME_CALLS,
            content=SDP_OFFER,
            headers={"Content-Type": "application/sdp", "Authorization": "Bearer ek_abc123"},
        )
        assert response.status_code == 401
        assert "client secret" in response.json()["error"]["message"]
        assert not upstream.routes["call"].called


class TestUpstreamFaults:
    """A call is never created twice: nothing is retried once it may have arrived."""

    async def test_5xx_is_502_and_not_retried(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """OpenAI answers 500: 502 upstream_server_error after exactly one attempt."""
        upstream.routes["call"].mock(return_value=httpx.Response(500))
        response = await client.post(REALTIME_CALLS, files=multipart())
        assert_error(response, 502, "upstream_server_error", None)
        assert upstream.routes["call"].call_count == 1

    async def test_timeout_is_504_and_not_retried(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The exchange times out after sending: 504 after exactly one attempt."""
        upstream.routes["call"].mock(side_effect=httpx.ReadTimeout("slow"))
        response = await client.post(REALTIME_CALLS, files=multipart())
        assert response.status_code == 504
        assert upstream.routes["call"].call_count == 1

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(201, content=SDP_ANSWER.encode()),
            httpx.Response(201, content=b"<html>", headers={"Location": f"/x/{CALL_ID}"}),
            httpx.Response(201, content=SDP_ANSWER.encode(), headers={"Location": "/a/b c"}),
        ],
        ids=["no-location", "not-sdp", "bad-call-id"],
    )
    async def test_unusable_answer_is_502(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter, answer: httpx.Response
    ) -> None:
        """An answer without a usable call id or SDP answer: 502 upstream_bad_response."""
        upstream.routes["call"].mock(return_value=answer)
        response = await client.post(REALTIME_CALLS, files=multipart())
        assert_error(response, 502, "upstream_bad_response", None)

    async def test_openai_rate_limit_is_429_with_retry_after(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """OpenAI's 429 is passed on with its Retry-After."""
        upstream.routes["call"].mock(return_value=httpx.Response(429, headers={"Retry-After": "7"}))
        response = await client.post(REALTIME_CALLS, files=multipart())
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"


class TestAuditAndMetrics:
    """A call writes one audit line and counts as a mint, with nothing of the SDP logged."""

    async def test_audit_line_names_call_and_caller_not_the_offer(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Identity, endpoint, call id, SDP size; neither the offer nor the answer."""
        key, entry = new_api_key("kiosk")
        client = await client_for(make_settings(auth_mode="api_key", auth_api_keys=entry))
        with captured_logs() as logs:
            response = await client.post(
                REALTIME_CALLS, files=multipart(), headers={"Authorization": f"Bearer {key}"}
            )
        assert response.status_code == 201, response.text
        [line] = [line for line in logs if line["event"] == "request"]
        assert line["identity"] == "kiosk"
        assert line["endpoint"] == "realtime_calls"
        assert line["call_id"] == CALL_ID
        assert line["sdp_bytes"] == len(SDP_OFFER)
        assert line["outcome"] == "created"
        text = repr(logs)
        for secret in ("a=rtpmap", "203.0.113.7", API_KEY, key):
            assert secret not in text

    async def test_counted_in_rtp_mints_total(self, client: httpx.AsyncClient) -> None:
        """rtp_mints_total{endpoint="realtime_calls",outcome="minted"} counts created calls."""
        metric = 'rtp_mints_total{endpoint="realtime_calls",outcome="minted"}'

        async def count() -> float:
            for line in (await client.get(METRICS)).text.splitlines():
                if line.startswith(metric):
                    return float(line.split()[-1])
            return 0.0

        before = await count()
        await client.post(REALTIME_CALLS, files=multipart())
        assert await count() == before + 1


class TestOfficialSdk:
    """`client.realtime.calls.create` works by changing only base_url."""

    async def test_calls_create_with_session(
        self, sdk: openai.AsyncOpenAI, upstream: respx.MockRouter
    ) -> None:
        """sdp + session through the SDK: the SDP answer comes back, the session went up."""
        answer = await sdk.realtime.calls.create(
            sdp=SDP_OFFER, session={"type": "realtime", "audio": {"output": {"voice": "cedar"}}}
        )
        assert answer.text == SDP_ANSWER
        assert sent_session(upstream)["audio"]["output"]["voice"] == "cedar"

    async def test_calls_create_with_sdp_only(
        self, sdk: openai.AsyncOpenAI, upstream: respx.MockRouter
    ) -> None:
        """sdp alone (the SDK sends it as application/sdp): the policy's defaults apply."""
        answer = await sdk.realtime.calls.create(sdp=SDP_OFFER)
        assert answer.text == SDP_ANSWER
        assert sent_session(upstream)["model"] == "gpt-realtime-2"

    async def test_policy_error_is_permission_denied(self, sdk: openai.AsyncOpenAI) -> None:
        """A refused model raises the SDK's PermissionDeniedError with the service's param."""
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.realtime.calls.create(
                sdp=SDP_OFFER, session={"type": "realtime", "model": "gpt-4o-realtime-preview"}
            )
        assert caught.value.param == "session.model"
