"""MCP credentials out of call records (service/calls/sealed.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from service.calls.fixed import DIGEST, overridden
from service.calls.records import CallRecord, owner_of
from service.calls.sealed import definitions, resolved
from service.policy.mcp import McpServer
from tests.conftest import MCP_HEADER, MCP_TOKEN, MakeSettings
from tests.suite_logs import captured_logs

SERVER = McpServer(
    label="crm",
    server_url="https://mcp.example.com/mcp",
    allowed_tools=("lookup_customer",),
    authorization=SecretStr(MCP_TOKEN),
    headers={"X-Key": SecretStr(MCP_HEADER)},
)
TOOL = SERVER.as_tool()
WEATHER = {"type": "function", "name": "weather"}


def record(tools: list[dict[str, Any]]) -> CallRecord:
    """A call record whose fixed and created tools are `tools`."""
    return CallRecord(
        kind="realtime",
        call_id="rtc_1",
        owner=owner_of("alice"),
        caller="alice",
        started_ms=0,
        deadline_ms=10**15,
        fixed={"tools": tools, "tracing": None},
        created={"type": "realtime", "tools": tools},
    )


def stored(tools: list[dict[str, Any]]) -> CallRecord:
    """The record as another worker reads it back from the store."""
    again = CallRecord.loads(record(tools).dumps())
    assert again is not None
    return again


class TestSealed:
    """A record is stored with each MCP tool's identity and a digest, never its credentials."""

    def test_stored_record_holds_no_credentials(self) -> None:
        """Neither `fixed` nor `created` as written holds the token or a header value."""
        raw = record([WEATHER, TOOL]).dumps()
        assert MCP_TOKEN not in raw
        assert MCP_HEADER not in raw
        assert "X-Key" not in raw

    def test_stored_tool_keeps_its_identity_and_a_digest(self) -> None:
        """The sealed tool is the tool without credentials, plus their digest; others as is."""
        again = stored([WEATHER, TOOL])
        function, sealed = again.fixed["tools"]
        assert function == WEATHER
        assert {k: v for k, v in sealed.items() if k != DIGEST} == {
            k: v for k, v in TOOL.items() if k not in ("authorization", "headers")
        }
        assert len(sealed[DIGEST]) == 32
        assert again.created["tools"][1] == sealed

    def test_sealed_tools_compare_as_the_tools_did(self) -> None:
        """Against OpenAI's echo (no credentials), a sealed tool holds or is overridden alike."""
        fixed = stored([TOOL]).fixed
        echoed = {k: v for k, v in TOOL.items() if k not in ("authorization", "headers")}
        assert overridden(fixed, {"tools": [echoed]}) == []
        assert overridden(fixed, {"tools": [{**echoed, "server_url": "https://evil/mcp"}]}) == [
            "tools"
        ]


class TestResolved:
    """An adopting worker gives sealed tools their credentials back from the caller's policy."""

    def test_sealed_tool_resolves_to_the_policy_server(self) -> None:
        """The same server with the same credentials: the tool exactly as it was created."""
        fixed, missing = resolved(stored([WEATHER, TOOL]).fixed, [TOOL])
        assert fixed["tools"] == [WEATHER, TOOL]
        assert missing == []

    def test_rotated_credentials_resolve_to_the_current_ones(self) -> None:
        """The same server with other credentials: the policy's current ones, logged by label."""
        rotated = SERVER.model_copy(update={"authorization": SecretStr("mcp-rotated-token")})
        with captured_logs() as logs:
            fixed, missing = resolved(stored([TOOL]).fixed, [rotated.as_tool()])
        assert fixed["tools"][0]["authorization"] == "mcp-rotated-token"
        assert missing == []
        [changed] = [line for line in logs if line["event"] == "call_mcp_credentials_changed"]
        assert changed["server_label"] == "crm"

    def test_server_no_longer_offered_is_missing(self) -> None:
        """A server removed, or redefined (another URL), resolves nothing: its label is named."""
        moved = SERVER.model_copy(update={"server_url": "https://other.example.com/mcp"})
        for known in ([], [moved.as_tool()]):
            fixed, missing = resolved(stored([TOOL]).fixed, known)
            assert missing == ["crm"]
            assert MCP_TOKEN not in str(fixed)

    def test_plaintext_record_of_an_older_version_is_read_as_written(self) -> None:
        """An older record's plaintext tools are read as written, and sealed when rewritten."""
        plain = orjson.loads(record([TOOL]).dumps())
        plain["fixed"]["tools"] = plain["created"]["tools"] = [TOOL]
        old = CallRecord.loads(orjson.dumps(plain).decode())
        assert old is not None
        fixed, missing = resolved(old.fixed, [])
        assert (fixed["tools"], missing) == ([TOOL], [])
        assert MCP_TOKEN not in old.dumps()


DELEGATION: dict[str, Any] = {
    "type": "responses",
    "responses": {
        "model": "gpt-5.1",
        "tools": [
            {
                "type": "mcp",
                "server_label": "crm",
                "server_url": "https://crm.example/mcp",
                "authorization": MCP_TOKEN,
                "headers": {"X-Key": MCP_HEADER},
            }
        ],
    },
}


class TestDelegation:
    """GPT-Live: the MCP tools of the server's delegation are sealed and resolved alike."""

    def live_record(self) -> CallRecord:
        return CallRecord(
            kind="live",
            call_id="sess_1",
            owner=owner_of("alice"),
            caller="alice",
            started_ms=0,
            deadline_ms=10**15,
            fixed={"delegation": DELEGATION},
            created={"delegation": DELEGATION},
        )

    def test_delegation_credentials_are_not_stored(self) -> None:
        """The stored delegation keeps its MCP tool's identity, not its token or header."""
        raw = self.live_record().dumps()
        assert MCP_TOKEN not in raw
        assert MCP_HEADER not in raw
        assert "https://crm.example/mcp" in raw

    def test_delegation_resolves_from_the_policy_delegation(
        self, tmp_path: Path, make_settings: MakeSettings
    ) -> None:
        """An adopting worker finds the tool in its own delegation file: the delegation whole."""
        path = tmp_path / "delegation.json"
        path.write_text(json.dumps(DELEGATION))
        policy = make_settings(policy={"live_delegation_file": path}).policy
        again = CallRecord.loads(self.live_record().dumps())
        assert again is not None
        fixed, missing = resolved(again.fixed, definitions(policy))
        assert (fixed, missing) == ({"delegation": DELEGATION}, [])
