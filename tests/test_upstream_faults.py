"""Upstream trouble: a precise status, no hang, no 500, and the key never shows."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from tests.conftest import API_KEY, ClientFor, MakeSettings
from tests.paths import SESSIONS

pytestmark = pytest.mark.anyio


async def mint_against(
    client_for: ClientFor,
    make_settings: MakeSettings,
    upstream: respx.MockRouter,
    side_effect: Any,
    **settings: Any,
) -> httpx.Response:
    upstream.routes["mint"].mock(side_effect=side_effect)
    client = await client_for(make_settings(**settings))
    response: httpx.Response = await client.post(SESSIONS, json={})
    assert API_KEY not in response.text
    assert "SERVERKEY" not in str(response.headers)
    return response


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


class TestUpstreamStatuses:
    """Each upstream status maps to one of ours."""

    @pytest.mark.parametrize("status", [401, 403])
    async def test_key_refused_is_502(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        status: int,
    ) -> None:
        """OpenAI refusing the server's key is the server's fault: 502, not 401."""
        response = await mint_against(
            client_for,
            make_settings,
            upstream,
            httpx.Response(status, json={"error": {"message": "bad"}}),
        )
        error_of(response, 502, "upstream_auth_failed")
        assert upstream.routes["mint"].call_count == 1

    async def test_429_passes_retry_after(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """OpenAI's rate limit reaches the caller as 429 with its Retry-After."""
        response = await mint_against(
            client_for, make_settings, upstream, httpx.Response(429, headers={"Retry-After": "7"})
        )
        error_of(response, 429, "upstream_rate_limited")
        assert response.headers["retry-after"] == "7"
        assert upstream.routes["mint"].call_count == 1

    async def test_5xx_is_502_and_not_retried(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A 5xx means the request reached OpenAI: 502 at once, never a second mint."""
        response = await mint_against(client_for, make_settings, upstream, httpx.Response(503))
        error_of(response, 502, "upstream_server_error")
        assert upstream.routes["mint"].call_count == 1

    async def test_upstream_400_is_relayed(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """OpenAI refusing the session comes back as a 400 with OpenAI's reason."""
        refused = httpx.Response(
            400,
            json={
                "error": {
                    "message": "Model not available",
                    "param": "session.model",
                    "code": "bad_model",
                    "type": "invalid_request_error",
                }
            },
        )
        error = error_of(
            await mint_against(client_for, make_settings, upstream, refused), 400, "bad_model"
        )
        assert error["param"] == "session.model"
        assert "Model not available" in error["message"]


class TestRelayedErrorText:
    """What OpenAI (or something in between) says in an error reaches the caller made safe."""

    async def test_echoed_key_is_masked(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """An upstream that echoes the request's headers does not hand the key to the caller."""
        echo = httpx.Response(
            400,
            json={
                "error": {
                    "message": f"bad; Authorization: Bearer {API_KEY}, old: sk-proj-OTHER0123456",
                    "param": f"headers.authorization={API_KEY}",
                    "code": "invalid_value",
                }
            },
        )
        response = await mint_against(client_for, make_settings, upstream, echo)
        error = error_of(response, 400, "invalid_value")
        assert "sk-proj-OTHER0123456" not in error["message"]
        assert "SERVERKEY" not in error["message"]
        assert "SERVERKEY" not in error["param"]

    async def test_long_text_is_cut(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A huge upstream message is cut to a few hundred characters."""
        huge = httpx.Response(400, json={"error": {"message": "x" * 100_000, "code": "big"}})
        error = error_of(await mint_against(client_for, make_settings, upstream, huge), 400, "big")
        assert len(error["message"]) < 400

    async def test_odd_codes_are_not_metric_labels(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """An upstream code outside a plain identifier is replaced, and never labels a metric."""
        odd = httpx.Response(400, json={"error": {"message": "no", "code": "Robert'); DROP"}})
        response = await mint_against(client_for, make_settings, upstream, odd)
        error_of(response, 400, "upstream_rejected")
        client = await client_for(make_settings())
        metrics = (await client.get("/metrics")).text
        assert "DROP" not in metrics
        assert 'rtp_upstream_errors_total{kind="upstream_rejected"}' in metrics


class TestBadAnswers:
    """Answers that cannot be used are 502s."""

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, content=b"<html>gateway</html>"),
            httpx.Response(200, json={"expires_at": 1, "session": {}}),
            httpx.Response(200, json={"value": "", "expires_at": 1}),
            httpx.Response(200, json={"value": "ek_1", "expires_at": "soon"}),
            httpx.Response(200, json={"value": "ek_1", "expires_at": True}),
            httpx.Response(200, json=["ek_1"]),
        ],
    )
    async def test_unusable_answer_is_502(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        answer: httpx.Response,
    ) -> None:
        """Non-JSON or a missing value/expiry is a 502, not a 500."""
        response = await mint_against(client_for, make_settings, upstream, answer)
        error_of(response, 502, "upstream_bad_response")


class TestNetwork:
    """Connection failures and timeouts."""

    @pytest.mark.parametrize(
        ("fault", "status", "code", "attempts"),
        [
            # Provably never sent: retried UPSTREAM_MAX_RETRIES times, then 502.
            (httpx.ConnectError("refused"), 502, "upstream_unreachable", 3),
            # May have reached OpenAI: answered at once, never minted twice.
            (httpx.ReadTimeout("slow"), 504, "upstream_timeout", 1),
            (httpx.RemoteProtocolError("dropped"), 502, "upstream_connection", 1),
        ],
    )
    async def test_transport_fault(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        fault: Exception,
        status: int,
        code: str,
        attempts: int,
    ) -> None:
        """Each transport fault has its status, and is retried only if it never left."""
        response = await mint_against(client_for, make_settings, upstream, fault)
        error_of(response, status, code)
        assert upstream.routes["mint"].call_count == attempts

    async def test_connect_error_then_success_mints(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A request that never left is retried, and the retry's secret reaches the caller."""
        ok = httpx.Response(200, json={"value": "ek_x_123456", "expires_at": 1, "session": {}})
        response = await mint_against(
            client_for, make_settings, upstream, [httpx.ConnectError("refused"), ok]
        )
        assert response.status_code == 200
        assert upstream.routes["mint"].call_count == 2

    async def test_hanging_upstream_is_cut_at_the_deadline(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """An upstream that never answers yields 504 at UPSTREAM_TIMEOUT_SECONDS."""
        never = asyncio.Event()

        async def hang(_request: httpx.Request) -> httpx.Response:
            await never.wait()  # set by no one: only the service's deadline ends the mint
            raise AssertionError("unreachable")

        response = await mint_against(
            client_for, make_settings, upstream, hang, upstream_timeout_seconds=0.3
        )
        error_of(response, 504, "upstream_timeout")
