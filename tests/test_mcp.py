"""MCP servers: only from POLICY_MCP_SERVERS_FILE, picked by label, credentials never shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from tests.conftest import MCP_HEADER, MCP_TOKEN, ClientFor, MakeSettings, sent_body
from tests.paths import CLIENT_SECRETS, POLICY

pytestmark = pytest.mark.anyio
TOKEN = MCP_TOKEN
HEADER = MCP_HEADER


@pytest.fixture(name="mcp_client")
async def fixture_mcp_client(
    tmp_path: Path, client_for: ClientFor, make_settings: MakeSettings
) -> httpx.AsyncClient:
    """A service whose servers file offers `crm` (URL, token file, header) and `cal` (connector)."""
    (tmp_path / "crm_token").write_text(TOKEN + "\n")
    servers = tmp_path / "mcp.toml"
    servers.write_text(
        f"""
[[servers]]
label = "crm"
server_url = "https://mcp.example.com/mcp"
description = "Customer records"
allowed_tools = ["lookup_customer"]
require_approval = "never"
authorization_file = "{tmp_path / "crm_token"}"
headers = {{ "X-Key" = "{HEADER}" }}

[[servers]]
label = "cal"
connector_id = "connector_googlecalendar"
"""
    )
    return await client_for(make_settings(policy={"mcp_servers_file": str(servers)}))


def session(**fields: Any) -> dict[str, Any]:
    return {"session": {"type": "realtime", **fields}}


class TestMcpServers:
    """POST /v1/realtime/client_secrets with MCP tools."""

    async def test_label_picks_the_server_definition(
        self, mcp_client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A caller's `{type: mcp, server_label}` is sent as the server's definition."""
        response = await mcp_client.post(
            CLIENT_SECRETS, json=session(tools=[{"type": "mcp", "server_label": "crm"}])
        )
        assert response.status_code == 200, response.text
        assert sent_body(upstream)["session"]["tools"] == [
            {
                "type": "mcp",
                "server_label": "crm",
                "server_url": "https://mcp.example.com/mcp",
                "server_description": "Customer records",
                "allowed_tools": ["lookup_customer"],
                "require_approval": "never",
                "authorization": TOKEN,
                "headers": {"X-Key": HEADER},
            }
        ]

    async def test_credentials_never_reach_the_caller(self, mcp_client: httpx.AsyncClient) -> None:
        """Neither the answer, its decisions, a dry run nor GET /v1/policy carries credentials."""
        body = session(tools=[{"type": "mcp", "server_label": "crm"}])
        minted = await mcp_client.post(CLIENT_SECRETS, json=body)
        dry = await mcp_client.post(f"{CLIENT_SECRETS}?dry_run=true", json=body)
        view = await mcp_client.get(POLICY)
        for response in (minted, dry, view):
            assert response.status_code == 200, response.text
            assert TOKEN not in response.text
            assert HEADER not in response.text
        assert view.json()["mcp_servers"][0]["label"] == "crm"

    async def test_caller_credentials_are_refused(self, mcp_client: httpx.AsyncClient) -> None:
        """A caller naming a server's URL or token itself is refused, saying what to send."""
        tool = {"type": "mcp", "server_label": "crm", "authorization": "mine"}
        response = await mcp_client.post(CLIENT_SECRETS, json=session(tools=[tool]))
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["param"] == "session.tools"
        assert "send only type and server_label, not authorization" in error["message"]
        assert "mine" not in response.text

    async def test_returned_session_is_accepted_back(
        self, mcp_client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The session returned (MCP servers as defined, credentials stripped) mints again."""
        body = session(tools=[{"type": "mcp", "server_label": "crm"}])
        first = (await mcp_client.post(CLIENT_SECRETS, json=body)).json()
        again = await mcp_client.post(CLIENT_SECRETS, json={"session": first["session"]})
        assert again.status_code == 200, again.text
        assert sent_body(upstream)["session"]["tools"][0]["authorization"] == TOKEN

    async def test_changed_server_url_is_refused(self, mcp_client: httpx.AsyncClient) -> None:
        """A caller's MCP tool pointing a known label at another URL is refused."""
        tool = {"type": "mcp", "server_label": "crm", "server_url": "https://evil.example/mcp"}
        response = await mcp_client.post(CLIENT_SECRETS, json=session(tools=[tool]))
        assert response.status_code == 403
        assert "not server_url" in response.text

    async def test_unknown_label_is_refused(self, mcp_client: httpx.AsyncClient) -> None:
        """A label not in the servers file is refused, listing the offered ones."""
        response = await mcp_client.post(
            CLIENT_SECRETS, json=session(tools=[{"type": "mcp", "server_label": "erp"}])
        )
        assert response.status_code == 403
        assert "MCP server 'erp' is not offered (offered: crm, cal)" in response.text

    async def test_mcp_tool_choice(
        self, mcp_client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """tool_choice may force a chosen server's allowed tool."""
        response = await mcp_client.post(
            CLIENT_SECRETS,
            json=session(
                tools=[{"type": "mcp", "server_label": "crm"}],
                tool_choice={"type": "mcp", "server_label": "crm", "name": "lookup_customer"},
            ),
        )
        assert response.status_code == 200, response.text
        assert sent_body(upstream)["session"]["tool_choice"]["server_label"] == "crm"

    async def test_mcp_tool_choice_outside_allowed_tools(
        self, mcp_client: httpx.AsyncClient
    ) -> None:
        """tool_choice naming a tool the server does not allow is refused."""
        response = await mcp_client.post(
            CLIENT_SECRETS,
            json=session(
                tools=[{"type": "mcp", "server_label": "crm"}],
                tool_choice={"type": "mcp", "server_label": "crm", "name": "delete_all"},
            ),
        )
        assert response.status_code == 403
        assert "which MCP server 'crm' does not offer" in response.text


class TestServersFile:
    """The servers file is validated at start-up."""

    def test_server_needs_one_target(self, tmp_path: Path, make_settings: MakeSettings) -> None:
        """A server with neither server_url nor connector_id stops start-up."""
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"servers": [{"label": "x"}]}))
        with pytest.raises(ValueError, match="exactly one of server_url, connector_id"):
            make_settings(policy={"mcp_servers_file": str(path)})
