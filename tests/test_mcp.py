"""MCP servers: only from POLICY_MCP_SERVERS_FILE, picked by label, credentials never shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from tests.conftest import (
    CALL_ID,
    LIVE_ID,
    MCP_HEADER,
    MCP_TOKEN,
    SDP_OFFER,
    ClientFor,
    MakeSettings,
    sent_body,
    serving,
)
from tests.paths import CLIENT_SECRETS, LIVE_SESSIONS, POLICY, REALTIME_CALLS
from tests.servers import redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
TOKEN = MCP_TOKEN
HEADER = MCP_HEADER


def servers_file(folder: Path, *, crm: bool = True) -> Path:
    """A servers file offering `crm` (URL, token file, header) unless not `crm`, and `cal`."""
    (folder / "crm_token").write_text(TOKEN + "\n")
    servers = folder / ("mcp.toml" if crm else "mcp_without_crm.toml")
    crm_entry = f"""
[[servers]]
label = "crm"
server_url = "https://mcp.example.com/mcp"
description = "Customer records"
allowed_tools = ["lookup_customer"]
require_approval = "never"
authorization_file = "{folder / "crm_token"}"
headers = {{ "X-Key" = "{HEADER}" }}
"""
    cal_entry = """
[[servers]]
label = "cal"
connector_id = "connector_googlecalendar"
"""
    servers.write_text((crm_entry if crm else "") + cal_entry)
    return servers


@pytest.fixture(name="mcp_client")
async def fixture_mcp_client(
    tmp_path: Path, client_for: ClientFor, make_settings: MakeSettings
) -> httpx.AsyncClient:
    """A service whose servers file offers `crm` (URL, token file, header) and `cal` (connector)."""
    servers = servers_file(tmp_path)
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


CRM_SESSION = {"type": "realtime", "tools": [{"type": "mcp", "server_label": "crm"}]}
RECORD_KEY = f"rtp:call:realtime:{CALL_ID}"


async def create_mcp_call(client: httpx.AsyncClient) -> None:
    """Create a supervised call whose session picks the `crm` server."""
    files = [
        ("sdp", (None, SDP_OFFER.encode(), "application/sdp")),
        ("session", (None, json.dumps(CRM_SESSION).encode(), "application/json")),
    ]
    response = await client.post(REALTIME_CALLS, files=files)
    assert response.status_code == 201, response.text


async def restated(sideband: ScriptedSideband, count: int = 1) -> dict[str, Any]:
    """Wait for the supervisor's `count`th attach and the policy it restated on it."""
    await sideband.attached(CALL_ID, count)
    await sideband.until(lambda: len(sideband.sent[CALL_ID]) >= 1)
    return sideband.sent[CALL_ID].pop()


def tools_echoed(tools: list[Any]) -> dict[str, Any]:
    """OpenAI's `session.updated` for the call, with `tools`."""
    session: dict[str, Any] = {"type": "realtime", "model": "gpt-realtime-2", "tracing": None}
    session.update(tools=tools, audio={"output": {"voice": "alloy"}})
    return {"type": "session.updated", "session": session}


class TestMcpCalls:
    """A supervised call with MCP tools: credentials upstream, never in its record."""

    async def test_stored_record_holds_no_credentials(
        self, tmp_path: Path, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """The call's record as Redis holds it names the server, never its token or header."""
        with redis_server() as redis:
            policy = {"mcp_servers_file": str(servers_file(tmp_path))}
            settings = make_settings(policy=policy, redis_url=redis.url, redis_timeout_seconds=2.0)
            await create_mcp_call(await client_for(settings))
            with redis.client() as admin:
                raw = admin.get(RECORD_KEY)
        assert raw is not None
        assert '"server_label":"crm"' in raw
        assert TOKEN not in raw
        assert HEADER not in raw

    async def test_live_record_holds_no_delegation_credentials(
        self, tmp_path: Path, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """GPT-Live: the stored record keeps the delegation's MCP server, not its credentials."""
        tool = {
            "type": "mcp",
            "server_label": "crm",
            "server_url": "https://mcp.example.com/mcp",
            "authorization": TOKEN,
            "headers": {"X-Key": HEADER},
        }
        delegation = {"type": "responses", "responses": {"model": "gpt-5.1", "tools": [tool]}}
        path = tmp_path / "delegation.json"
        path.write_text(json.dumps(delegation))
        with redis_server() as redis:
            settings = make_settings(
                policy={"live_delegation_file": path},
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
            )
            client = await client_for(settings)
            transport = {"type": "webrtc", "sdp": SDP_OFFER}
            created = await client.post(LIVE_SESSIONS, json={"session": {}, "transport": transport})
            assert created.status_code == 200, created.text
            with redis.client() as admin:
                raw = admin.get(f"rtp:call:live:{LIVE_ID}")
        assert raw is not None
        assert "https://mcp.example.com/mcp" in raw
        assert TOKEN not in raw
        assert HEADER not in raw

    async def test_revert_carries_the_credentials(
        self, mcp_client: httpx.AsyncClient, sideband: ScriptedSideband
    ) -> None:
        """Tools overridden on the sideband come back with the server's token and header."""
        await create_mcp_call(mcp_client)
        await restated(sideband)
        sideband.emit(CALL_ID, tools_echoed([]))
        await sideband.until(lambda: sideband.sent[CALL_ID])
        [tool] = sideband.sent[CALL_ID][0]["session"]["tools"]
        assert (tool["authorization"], tool["headers"]) == (TOKEN, {"X-Key": HEADER})

    async def test_adopting_worker_restores_the_credentials(
        self,
        tmp_path: Path,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """An adopting worker resolves the token from its policy; the record stays sealed."""
        with redis_server() as redis:
            policy = {"mcp_servers_file": str(servers_file(tmp_path))}
            transport = httpx.MockTransport(upstream.async_handler)

            def app(lease_seconds: float) -> Any:
                settings = make_settings(
                    policy=policy,
                    redis_url=redis.url,
                    redis_timeout_seconds=2.0,
                    calls_lease_seconds=lease_seconds,
                )
                return create_app(settings, transport, sideband)

            async with serving(app(1)):
                async with serving(app(300)) as first:
                    await create_mcp_call(first)
                    await restated(sideband)
                [tool] = (await restated(sideband, count=2))["session"]["tools"]
                assert tool["authorization"] == TOKEN
                sideband.emit(CALL_ID, tools_echoed([]))
                await sideband.until(lambda: sideband.sent[CALL_ID])
                [tool] = sideband.sent[CALL_ID][0]["session"]["tools"]
                assert (tool["authorization"], tool["headers"]) == (TOKEN, {"X-Key": HEADER})
                with redis.client() as admin:
                    assert TOKEN not in admin.get(RECORD_KEY)

    async def test_unresolvable_tools_hang_up_the_adopted_call(
        self,
        tmp_path: Path,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """An adopting worker whose policy no longer offers the server hangs the call up."""
        with redis_server() as redis:
            transport = httpx.MockTransport(upstream.async_handler)

            def app(servers: Path, lease_seconds: float) -> Any:
                settings = make_settings(
                    policy={"mcp_servers_file": str(servers)},
                    redis_url=redis.url,
                    redis_timeout_seconds=2.0,
                    calls_lease_seconds=lease_seconds,
                )
                return create_app(settings, transport, sideband)

            with captured_logs() as logs:
                async with serving(app(servers_file(tmp_path, crm=False), 1)):
                    async with serving(app(servers_file(tmp_path), 300)) as first:
                        await create_mcp_call(first)
                        await restated(sideband)
                    await sideband.until(lambda: upstream.routes["hangup"].called)
        assert CALL_ID in upstream.routes["hangup"].calls.last.request.url.path
        assert len(sideband.connections[CALL_ID]) == 1
        [line] = [line for line in logs if line["event"] == "call_tools_unresolvable"]
        assert line["server_labels"] == ["crm"]
