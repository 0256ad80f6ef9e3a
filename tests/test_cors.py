"""CORS: exact allowed origins, working preflights, nothing for other origins."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ClientFor, MakeSettings
from tests.paths import REALTIME_CALLS, SESSIONS

pytestmark = pytest.mark.anyio
ALLOWED = "https://app.example.com"


@pytest.fixture(name="cors_client")
async def fixture_cors_client(
    client_for: ClientFor, make_settings: MakeSettings
) -> httpx.AsyncClient:
    """The service allowing one origin."""
    client: httpx.AsyncClient = await client_for(make_settings(cors_allow_origins=ALLOWED))
    return client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


class TestCors:
    """Browser cross-origin rules."""

    async def test_preflight_from_allowed_origin(self, cors_client: httpx.AsyncClient) -> None:
        """An allowed origin's preflight succeeds and allows the auth header."""
        response = await cors_client.options(SESSIONS, headers=preflight(ALLOWED))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in response.headers

    async def test_mint_from_allowed_origin_exposes_headers(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        """The mint answers with the origin allowed and our headers readable by JS."""
        response = await cors_client.post(SESSIONS, json={}, headers={"Origin": ALLOWED})
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()

    async def test_errors_are_readable_cross_origin(self, cors_client: httpx.AsyncClient) -> None:
        """A policy error carries the CORS header too, so the page can show it."""
        response = await cors_client.post(
            SESSIONS, json={"voice": "robot"}, headers={"Origin": ALLOWED}
        )
        assert response.status_code == 403
        assert response.headers["access-control-allow-origin"] == ALLOWED

    async def test_preflight_from_denied_origin(self, cors_client: httpx.AsyncClient) -> None:
        """Another origin's preflight gets no Access-Control-Allow-Origin."""
        response = await cors_client.options(SESSIONS, headers=preflight("https://evil.example"))
        assert "access-control-allow-origin" not in response.headers

    async def test_request_from_denied_origin(self, cors_client: httpx.AsyncClient) -> None:
        """A simple request from another origin gets no Access-Control-Allow-Origin."""
        response = await cors_client.post(
            SESSIONS, json={}, headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in response.headers

    @pytest.mark.parametrize(
        ("client", "headers"),
        [
            # What @openai/agents-realtime 0.20 sends with its bare SDP offer.
            ("agents-realtime", "authorization,content-type,x-openai-agents-sdk"),
            # What the openai JS SDK 7.60 sends from a browser (dangerouslyAllowBrowser).
            (
                "openai-js",
                "authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,"
                "x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,"
                "x-stainless-runtime-version,x-stainless-timeout",
            ),
        ],
    )
    async def test_preflight_allows_openai_client_headers(
        self, cors_client: httpx.AsyncClient, client: str, headers: str
    ) -> None:
        """OpenAI's browser SDKs' own headers pass the preflight (else "Failed to fetch")."""
        response = await cors_client.options(
            REALTIME_CALLS,
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": headers,
            },
        )
        assert response.status_code == 200, (client, response.text)
        allowed = response.headers["access-control-allow-headers"].lower().split(", ")
        assert set(headers.split(",")) <= set(allowed)

    async def test_preflight_refuses_other_headers(self, cors_client: httpx.AsyncClient) -> None:
        """A header no OpenAI client sends is still refused: the list is exact, not `*`."""
        response = await cors_client.options(
            REALTIME_CALLS,
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,x-something-else",
            },
        )
        assert response.status_code == 400

    def test_wildcard_with_credentials_is_refused(self, make_settings: MakeSettings) -> None:
        """`*` combined with credentials stops start-up."""
        with pytest.raises(ValueError, match="CORS_ALLOW_ORIGINS"):
            make_settings(cors_allow_origins="*", cors_allow_credentials=True)
