"""`GET /demo/config.json`: where the demo page may send a typed caller key."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ClientFor, MakeSettings

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
