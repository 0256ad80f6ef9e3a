"""`?dry_run=true` on both mint endpoints: the decision, shown without the operator's secrets."""

from __future__ import annotations

import json

import pytest
import respx

from tests.conftest import SERVER_INSTRUCTIONS, ClientFor, MakeSettings
from tests.paths import CLIENT_SECRETS, SESSIONS

pytestmark = pytest.mark.anyio
SERVER_TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "OPERATOR-ONLY-DESCRIPTION",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}
OPERATOR_POLICY = {
    "instructions": SERVER_INSTRUCTIONS,
    "instructions_mode": "append",
    "tools": json.dumps([SERVER_TOOL]),
}


class TestRedaction:
    """What the server set itself is shown redacted, as GET /v1/policy hides it."""

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            (SESSIONS, {"instructions": "Speak French."}),
            (CLIENT_SECRETS, {"session": {"type": "realtime", "instructions": "Speak French."}}),
        ],
    )
    async def test_server_instructions_and_tools_are_redacted(
        self, client_for: ClientFor, make_settings: MakeSettings, path: str, body: object
    ) -> None:
        """Neither the server's instructions nor its tool definitions appear in a dry run."""
        client = await client_for(make_settings(policy=OPERATOR_POLICY))
        response = await client.post(f"{path}?dry_run=true", json=body)
        assert response.status_code == 200, response.text
        text = response.text
        assert "TOP-SECRET-PROMPT" not in text
        assert "OPERATOR-ONLY-DESCRIPTION" not in text
        session = response.json()["session"]
        assert session["instructions"] == "[redacted: set by the server]"
        assert [tool["name"] for tool in session["tools"]] == ["lookup_order"]

    async def test_the_mint_itself_still_carries_them(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Redaction is for the caller's view only: OpenAI receives the real values."""
        client = await client_for(make_settings(policy=OPERATOR_POLICY))
        response = await client.post(SESSIONS, json={"instructions": "Speak French."})
        assert response.status_code == 200, response.text
        sent = json.loads(upstream.routes["mint"].calls.last.request.content)["session"]
        assert sent["instructions"] == f"{SERVER_INSTRUCTIONS}\n\nSpeak French."
        assert sent["tools"][0]["description"] == "OPERATOR-ONLY-DESCRIPTION"

    async def test_decisions_do_not_carry_server_values(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """policy_decisions say what was done to instructions and tools, not their content."""
        client = await client_for(make_settings(policy=OPERATOR_POLICY))
        response = await client.post(SESSIONS, json={"instructions": "Speak French."})
        assert response.status_code == 200, response.text
        decisions = {d["param"]: d["applied"] for d in response.json()["policy_decisions"]}
        assert decisions["instructions"] == "[redacted: set by the server]"
        assert decisions["tools"] == ["lookup_order"]

    async def test_client_instructions_are_shown(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """With no server instructions in play, the caller sees its own instructions."""
        client = await client_for(make_settings())
        response = await client.post(f"{SESSIONS}?dry_run=true", json={"instructions": "Mine."})
        assert response.json()["session"]["instructions"] == "Mine."


class TestDryRunLimit:
    """Dry runs count against their own rate, not the mint limits."""

    async def test_dry_runs_have_their_own_limit(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Past RATE_LIMIT_DRY_RUN_PER_IDENTITY a dry run is 429, while mints go on."""
        client = await client_for(
            make_settings(
                rate_limit_dry_run_per_identity="2/minute", rate_limit_per_identity="5/minute"
            )
        )
        dry = [
            (await client.post(f"{SESSIONS}?dry_run=true", json={})).status_code for _ in range(3)
        ]
        assert dry == [200, 200, 429]
        assert (await client.post(SESSIONS, json={})).status_code == 200

    async def test_refused_dry_runs_count_too(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A dry run the policy refuses still uses up the dry-run rate."""
        client = await client_for(make_settings(rate_limit_dry_run_per_identity="1/minute"))
        first = await client.post(f"{SESSIONS}?dry_run=true", json={"voice": "robot"})
        assert first.status_code == 403
        second = await client.post(f"{SESSIONS}?dry_run=true", json={})
        assert second.status_code == 429
