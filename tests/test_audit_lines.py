"""Every request's line is an audit line: what was asked, by whom, and what it came to.

A refusal's line carries its error code and `param` (a 403, a 400
`invalid_json`, a 415 and a 502 no longer look alike), every line the
policy's hash, and the caller as AUTH_HASH_IDENTITIES says.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
import respx

from service.core.logs import request_headline
from tests.conftest import UPSTREAM_URL, ClientFor, MakeSettings
from tests.paths import CLIENT_SECRETS, SESSIONS
from tests.suite_logs import captured_logs

pytestmark = pytest.mark.anyio


def request_line(logs: list[MutableMapping[str, Any]]) -> MutableMapping[str, Any]:
    [line] = [entry for entry in logs if entry["event"] == "request"]
    return line


class TestRefusals:
    """Each refusal names itself on its line."""

    @pytest.mark.parametrize(
        ("body", "media_type", "outcome", "code", "param"),
        [
            (
                b'{"voice": "robot"}',
                "application/json",
                "policy_violation",
                "policy_violation",
                "voice",
            ),
            (b"{not json", "application/json", "invalid", "invalid_json", None),
            (
                b"{}",
                "text/plain",
                "unsupported_media_type",
                "unsupported_media_type",
                "Content-Type",
            ),
        ],
    )
    async def test_refusal_carries_code_and_param(
        self,
        client: httpx.AsyncClient,
        body: bytes,
        media_type: str,
        outcome: str,
        code: str,
        param: str | None,
    ) -> None:
        """The line of a refused mint says its endpoint, caller, outcome, code and param."""
        with captured_logs() as logs:
            response = await client.post(
                SESSIONS, content=body, headers={"Content-Type": media_type}
            )
        line = request_line(logs)
        assert (line["endpoint"], line["identity"], line["outcome"]) == (
            "sessions",
            "anonymous",
            outcome,
        )
        assert (line["error_code"], line["error_param"]) == (code, param)
        assert response.json()["error"]["code"] == code

    async def test_unreachable_upstream_names_host_and_error(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """502 `upstream_unreachable`: the line says so, the warning names host and error class."""
        upstream.routes["mint"].side_effect = httpx.ConnectError("refused")
        with captured_logs() as logs:
            response = await client.post(CLIENT_SECRETS, json={})
        assert response.status_code == 502
        assert request_line(logs)["error_code"] == "upstream_unreachable"
        warnings = [entry for entry in logs if entry["event"] == "upstream_unreachable"]
        assert warnings
        host = httpx.URL(UPSTREAM_URL).host
        assert {(w["host"], w["error"]) for w in warnings} == {(host, "ConnectError")}

    async def test_unknown_route_is_noted(self, client: httpx.AsyncClient) -> None:
        """A 404 from the router is an audited refusal too."""
        with captured_logs() as logs:
            response = await client.get("/v1/nothing-here")
        assert response.status_code == 404
        assert request_line(logs)["error_code"] == "not_found"


class TestEveryLine:
    """What every line carries."""

    async def test_policy_hash_is_on_lines_readyz_and_policy(
        self, client: httpx.AsyncClient
    ) -> None:
        """One hash names the policy in the audit line, `/readyz` and `GET /v1/policy`."""
        with captured_logs() as logs:
            minted = await client.post(CLIENT_SECRETS, json={})
        assert minted.status_code == 200
        line = request_line(logs)
        assert line["outcome"] == "minted"
        digest = line["policy_hash"]
        assert len(digest) == 12
        assert (await client.get("/readyz")).json()["policy_hash"] == digest
        assert (await client.get("/v1/policy")).json()["policy_hash"] == digest

    async def test_another_policy_has_another_hash(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Changing one rule changes the hash (an auditor tells deploys apart)."""
        first = await client_for(make_settings())
        second = await client_for(
            make_settings(policy={"allowed_voices": "marin", "default_voice": "marin"})
        )
        one = (await first.get("/v1/policy")).json()["policy_hash"]
        other = (await second.get("/v1/policy")).json()["policy_hash"]
        assert one != other

    async def test_hashed_identities_are_hashed_on_the_line(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """AUTH_HASH_IDENTITIES: the line names the caller by the hash traces use."""
        client = await client_for(make_settings(auth_hash_identities=True))
        with captured_logs() as logs:
            await client.post(CLIENT_SECRETS, json={})
        expected = hashlib.sha256(b"anonymous").hexdigest()[:32]
        assert request_line(logs)["identity"] == expected


class TestConsole:
    """LOG_FORMAT=console."""

    def test_request_line_leads_with_method_path_status_duration(self) -> None:
        """The headline reads like an access log; the other fields follow."""
        event = {"event": "request", "method": "POST", "path": "/v1/x", "status": 403}
        event["total_ms"] = 1.5
        shown = request_headline(None, "info", {**event, "endpoint": "x"})
        assert shown["event"] == "POST /v1/x 403 1.5ms"
        assert shown["endpoint"] == "x"
