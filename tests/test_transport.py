"""The production sender (aiohttp) against a real local HTTP server playing OpenAI.

respx covers the upstream through the httpx sender; these tests send the same
requests over real sockets through aiohttp's pool, so its error mapping is
tested too: every fault gets its precise status and the key never leaks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from service.app import create_app
from tests.conftest import API_KEY, MakeSettings, serving
from tests.contract import assert_valid_ga_request
from tests.servers import free_port

pytestmark = pytest.mark.anyio
seen: list[dict[str, Any]] = []


async def mint(request: web.Request) -> web.Response:
    """Like OpenAI: checks the key header and the body, answers with a secret."""
    if request.headers.get("Authorization") != f"Bearer {API_KEY}":
        return web.json_response({"error": {"message": "bad key"}}, status=401)
    body = await request.json()
    assert_valid_ga_request(body)
    seen.append({"body": body, "request_id": request.headers.get("X-Request-ID")})
    return web.json_response(
        {
            "value": "ek_real_socket_secret_0123456789",
            "expires_at": 1_900_000_000,
            "session": {**body["session"], "id": "sess_sock"},
        }
    )


async def fault(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind == "503":
        return web.json_response({"error": {"message": "down"}}, status=503)
    if kind == "429":
        return web.json_response(
            {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "11"}
        )
    if kind == "garbage":
        return web.Response(text="<html>proxy error</html>", content_type="text/html")
    if kind == "slow":
        await asyncio.sleep(10)
    if kind == "drop":
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(1)
    return web.Response(status=500)


@pytest.fixture(name="openai_port")
async def fixture_openai_port() -> AsyncIterator[int]:
    """A local aiohttp server: /v1/... mints; /fault/<kind>/v1/... misbehaves."""
    app = web.Application()
    app.router.add_post("/v1/realtime/client_secrets", mint)
    app.router.add_post("/fault/{kind}/v1/realtime/client_secrets", fault)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield port
    await runner.cleanup()


async def post(make_settings: MakeSettings, base_url: str, **settings: Any) -> httpx.Response:
    app = create_app(make_settings(openai_base_url=base_url, **settings))  # production sender
    async with serving(app) as client:
        response = await client.post(
            "/v1/realtime/sessions", json={"voice": "ash"}, headers={"X-Request-ID": "sock-1"}
        )
    assert API_KEY not in response.text
    return response


class TestAiohttpSender:
    """Real sockets, each fault."""

    async def test_mint_over_a_real_socket(
        self, make_settings: MakeSettings, openai_port: int
    ) -> None:
        """The body, key header and request id arrive as respx sees them; the secret returns."""
        seen.clear()
        response = await post(make_settings, f"http://127.0.0.1:{openai_port}/v1")
        assert response.status_code == 200
        assert response.json()["client_secret"]["value"] == "ek_real_socket_secret_0123456789"
        assert seen[-1]["request_id"] == "sock-1"
        assert seen[-1]["body"]["session"]["audio"]["output"]["voice"] == "ash"

    @pytest.mark.parametrize(
        ("kind", "status", "code"),
        [
            ("503", 502, "upstream_server_error"),
            ("429", 429, "upstream_rate_limited"),
            ("garbage", 502, "upstream_bad_response"),
            ("drop", 502, "upstream_connection"),
            ("slow", 504, "upstream_timeout"),
        ],
    )
    async def test_fault(
        self, make_settings: MakeSettings, openai_port: int, kind: str, status: int, code: str
    ) -> None:
        """Each misbehaviour maps to its status and code, never a 500 or a hang."""
        response = await post(
            make_settings,
            f"http://127.0.0.1:{openai_port}/fault/{kind}/v1",
            upstream_timeout_seconds=1.0,
            upstream_max_retries=1,
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        if kind == "429":
            assert response.headers["retry-after"] == "11"

    async def test_refused_port_is_502(self, make_settings: MakeSettings) -> None:
        """Nothing listening: 502 upstream_unreachable after the retries."""
        response = await post(make_settings, f"http://127.0.0.1:{free_port()}/v1")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unreachable"

    async def test_bad_server_key_is_502(
        self, make_settings: MakeSettings, openai_port: int
    ) -> None:
        """OpenAI refusing the server's key is a 502 for the caller."""
        response = await post(
            make_settings,
            f"http://127.0.0.1:{openai_port}/v1",
            openai_api_key="sk-test-wrong-key-0123456789",
        )
        assert response.status_code == 502
        assert json.loads(response.text)["error"]["code"] == "upstream_auth_failed"
