"""Attribution: every mint writes one audit line naming the caller, never a secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.auth import new_api_key
from tests.conftest import API_KEY, CLIENT_SECRET, ClientFor, MakeSettings
from tests.paths import SESSIONS, TRANSLATION_CLIENT_SECRETS
from tests.suite_logs import captured_logs

pytestmark = pytest.mark.anyio


class TestAuditLine:
    """The canonical request line of a mint is its audit line."""

    async def test_translation_mint_is_audited(self, client: httpx.AsyncClient) -> None:
        """A translation mint logs its endpoint, model and upstream session like any mint."""
        with captured_logs() as logs:
            response = await client.post(
                TRANSLATION_CLIENT_SECRETS, json={"session": {"model": "gpt-realtime-translate"}}
            )
        assert response.status_code == 200, response.text
        [line] = [line for line in logs if line["event"] == "request"]
        assert line["endpoint"] == "translation_client_secrets"
        assert line["model"] == "gpt-realtime-translate"
        assert line["outcome"] == "minted"
        assert line["upstream_session_id"] == "sess_test_1"

    async def test_mint_line_has_attribution_and_no_secret(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Identity, profile, endpoint, model, voice, decisions, session id, expiry; no secret."""
        key, entry = new_api_key("kiosk")
        client = await client_for(make_settings(auth_mode="api_key", auth_api_keys=entry))
        with captured_logs() as logs:
            response = await client.post(
                SESSIONS,
                json={"voice": "ash"},
                headers={"Authorization": f"Bearer {key}"},
            )
        assert response.status_code == 200
        lines = [line for line in logs if line["event"] == "request"]
        assert len(lines) == 1
        line = lines[0]
        assert {
            k: line[k]
            for k in (
                "identity",
                "profile",
                "endpoint",
                "model",
                "voice",
                "upstream_session_id",
                "expires_at",
                "outcome",
            )
        } == {
            "identity": "kiosk",
            "profile": "default",
            "endpoint": "sessions",
            "model": "gpt-realtime-2",
            "voice": "ash",
            "upstream_session_id": "sess_test_1",
            "expires_at": 1_900_000_000,
            "outcome": "minted",
        }
        assert line["decisions"] == ["model:default"]
        text = repr(logs)
        for secret in (API_KEY, CLIENT_SECRET, key):
            assert secret not in text

    async def test_refused_mint_is_logged_with_status(self, client: Any) -> None:
        """A policy refusal still writes its one line, with the status."""
        with captured_logs() as logs:
            await client.post(SESSIONS, json={"voice": "robot"})
        lines = [line for line in logs if line["event"] == "request"]
        assert [line["status"] for line in lines] == [403]
