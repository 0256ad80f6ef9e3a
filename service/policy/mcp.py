"""MCP servers a session may use: only those ops list in POLICY_MCP_SERVERS_FILE.

An MCP tool hands the model a remote server and, usually, a credential for it.
So callers never define one: they pick servers by label
(`{"type": "mcp", "server_label": "crm"}`) and the service sends the server's
own definition (URL or connector, allowed tools, approval rule, credentials).
The file (TOML, or JSON by extension) looks like::

    [[servers]]
    label = "crm"
    server_url = "https://mcp.example.com/mcp"
    description = "Customer records"
    allowed_tools = ["lookup_customer"]
    require_approval = "never"
    authorization_file = "/run/secrets/crm_mcp_token"   # or authorization = "..."
    headers = { "X-Tenant" = "acme" }

    [[servers]]
    label = "calendar"
    connector_id = "connector_googlecalendar"
    authorization_file = "/run/secrets/gcal_oauth"

Credentials are `SecretStr`s: they reach only the upstream request, never a
log line, an error, `GET /v1/policy`, a dry run or a response.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from service.contract.ga_tools import ConnectorId


class McpServer(BaseModel):
    """One MCP server or connector from the servers file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    server_url: str | None = None
    connector_id: ConnectorId | None = None
    description: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    """The server's tools the model may call; unset: all of them."""
    require_approval: Literal["always", "never"] = "always"
    authorization: SecretStr | None = None
    authorization_file: Path | None = None
    headers: dict[str, SecretStr] | None = None

    @model_validator(mode="after")
    def _one_target_and_credential(self) -> Self:
        """Exactly one of server_url or connector_id; the token inline or from a file."""
        if (self.server_url is None) == (self.connector_id is None):
            raise ValueError(f"server '{self.label}': set exactly one of server_url, connector_id")
        if self.authorization is not None and self.authorization_file is not None:
            raise ValueError(
                f"server '{self.label}': set authorization or authorization_file, not both"
            )
        if self.authorization_file is not None:
            try:
                token = self.authorization_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"server '{self.label}': cannot read authorization_file: {exc.strerror}"
                ) from None
            object.__setattr__(self, "authorization", SecretStr(token))
            object.__setattr__(self, "authorization_file", None)
        return self

    def as_tool(self) -> dict[str, Any]:
        """The GA `MCPTool` sent upstream, credentials included."""
        tool: dict[str, Any] = {"type": "mcp", "server_label": self.label}
        if self.server_url is not None:
            tool["server_url"] = self.server_url
        if self.connector_id is not None:
            tool["connector_id"] = self.connector_id
        if self.description is not None:
            tool["server_description"] = self.description
        if self.allowed_tools is not None:
            tool["allowed_tools"] = list(self.allowed_tools)
        tool["require_approval"] = self.require_approval
        if self.authorization is not None:
            tool["authorization"] = self.authorization.get_secret_value()
        if self.headers:
            tool["headers"] = {k: v.get_secret_value() for k, v in self.headers.items()}
        return tool

    def public(self) -> dict[str, Any]:
        """What `GET /v1/policy` shows: label, description, tools; never credentials."""
        return {
            "label": self.label,
            "description": self.description,
            "allowed_tools": list(self.allowed_tools) if self.allowed_tools is not None else None,
            "require_approval": self.require_approval,
        }


def read_mcp_servers(value: object) -> object:
    """Read POLICY_MCP_SERVERS_FILE (a path) into server entries; lists pass through."""
    if not isinstance(value, str | Path):
        return value
    text = str(value).strip()
    if not text:
        return ()
    path = Path(text)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read MCP servers file {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"MCP servers file {path} is not valid: {exc}") from None
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, list):
        raise ValueError(f"MCP servers file {path} must hold a 'servers' list")
    return tuple(servers)
