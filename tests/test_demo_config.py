"""The demo's edges: `/demo/config.json` (where a typed key may go), `/`, the start-up log."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ClientFor, MakeSettings
from tests.suite_logs import captured_logs

pytestmark = pytest.mark.anyio


class TestDemoConfig:
    """The demo's configuration, served beside its files."""

    async def test_lists_demo_api_origins(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """DEMO_API_ORIGINS is what the page may send a key to, besides its own origin."""
        client = await client_for(
            make_settings(demo_page=True, demo_api_origins="https://api.example.com")
        )
        response = await client.get("/demo/config.json")
        assert response.json() == {"api_origins": ["https://api.example.com"]}

    async def test_absent_without_the_demo(self, client: httpx.AsyncClient) -> None:
        """Without DEMO_PAGE there is no demo configuration either."""
        assert (await client.get("/demo/config.json")).status_code == 404


class TestRoot:
    """`/` opens the demo when it is served, and is an unknown route otherwise."""

    async def test_root_redirects_to_the_demo(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """DEMO_PAGE=true: 307 to the relative `/demo/`, which serves the page."""
        client = await client_for(make_settings(demo_page=True))
        response = await client.get("/")
        assert (response.status_code, response.headers["location"]) == (307, "/demo/")
        page = await client.get(response.headers["location"])
        assert page.status_code == 200
        assert "<title>realtime-token-proxy demo</title>" in page.text

    async def test_root_without_the_demo_is_404(self, client: httpx.AsyncClient) -> None:
        """Without DEMO_PAGE, `/` is the 404 envelope any unknown route gets."""
        response = await client.get("/")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"


class TestStartupLog:
    """The start-up log says where the demo is, so it can be opened from the terminal."""

    @pytest.mark.parametrize(
        ("host", "url"),
        [
            ("127.0.0.1", "http://127.0.0.1:8123/demo/"),
            ("0.0.0.0", "http://localhost:8123/demo/"),  # noqa: S104 - a setting, not bound
            ("::1", "http://[::1]:8123/demo/"),
        ],
    )
    async def test_demo_url_is_logged(
        self, client_for: ClientFor, make_settings: MakeSettings, host: str, url: str
    ) -> None:
        """DEMO_PAGE=true: one start-up line names the demo's URL on HOST and PORT."""
        with captured_logs() as logs:
            await client_for(make_settings(demo_page=True, host=host, port=8123))
        assert [line["demo_url"] for line in logs if "demo_url" in line] == [url]

    async def test_no_demo_url_without_the_demo(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Without DEMO_PAGE, no line mentions a demo."""
        with captured_logs() as logs:
            await client_for(make_settings())
        assert any(line["event"] == "policy_loaded" for line in logs)
        assert not [line for line in logs if "demo_url" in line]
