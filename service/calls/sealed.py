"""MCP credentials out of call records: sealed for the store, resolved from the policy.

A call's record (`service.calls.records`) keeps the MCP tools the policy
fixed, in `fixed` and in `created`, and the store is read by more than the
service (whoever can read Redis). So a record is written with each MCP tool
*sealed*: its identity (label, URL or connector, description, allowed tools,
approval rule: everything but `UNECHOED`) and a digest of its credentials
(`authorization`, `headers`) in their place. Comparison needs no more:
OpenAI does not echo credentials back (`service.calls.fixed.UNECHOED`).

The supervising worker holds its calls' tools with their credentials (it has
them anyway, in its policy), so what it restates and reverts carries them. A
worker that adopts a call reads the sealed record and *resolves* each tool
from the caller's policy (its profile, as every rule is) by identity:

- the same server, the same credentials: the tool as the call was created;
- the same server, other credentials (the servers file was rotated between
  the workers, the digest shows it): the tool with the policy's credentials
  now, which are the ones that work, logged as `call_mcp_credentials_changed`;
- no server of that identity (removed, or redefined: another URL, other
  allowed tools): the tool cannot be restored as the policy fixed it, so the
  adopting worker hangs the call up (`service.calls.supervisor`), as it
  would a changed model.

A record written before records were sealed holds plaintext tools: they are
read as they are (the call's own credentials), and sealed when next written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import structlog

from service.calls.fixed import DIGEST, UNECHOED
from service.policy.mcp import McpServer

log = structlog.get_logger("service.calls")
SEALED_KEYS = ("tools",)
"""Where `fixed` (by GA path) and `created` (by field) hold tools."""


def _digest(tool: Mapping[str, Any]) -> str:
    """A digest of a tool's credentials (canonical JSON): it tells a rotation, not a value."""
    secret = {key: tool[key] for key in sorted(UNECHOED) if key in tool}
    canonical = orjson.dumps(secret, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16, person=b"rtp-mcp-creds").hexdigest()


def _is_mcp(tool: object) -> bool:
    return isinstance(tool, Mapping) and tool.get("type") == "mcp"


def _identity(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tool.items() if key not in UNECHOED and key != DIGEST}


def _seal(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The tool as a record holds it: identity, and the digest of its credentials if any."""
    if not any(key in tool for key in UNECHOED):
        return dict(tool)  # no credentials, or sealed already
    return {**_identity(tool), DIGEST: _digest(tool)}


def sealed(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (a record's `fixed` or `created`) with each MCP tool sealed."""
    out = dict(values)
    for key in SEALED_KEYS:
        tools = out.get(key)
        if isinstance(tools, list):
            out[key] = [_seal(tool) if _is_mcp(tool) else tool for tool in tools]
    return out


def _resolve(tool: Mapping[str, Any], servers: Iterable[McpServer]) -> dict[str, Any] | None:
    """A sealed tool with the credentials of the policy's server of its identity, if any."""
    if DIGEST not in tool:
        return dict(tool)  # nothing sealed (no credentials, or an older plaintext record)
    for server in servers:
        candidate = server.as_tool()
        if server.label == tool.get("server_label") and _identity(candidate) == _identity(tool):
            if _digest(candidate) != tool[DIGEST]:
                log.warning("call_mcp_credentials_changed", server_label=server.label)
            return candidate
    return None


def resolved(
    values: Mapping[str, Any], servers: Iterable[McpServer]
) -> tuple[dict[str, Any], list[str]]:
    """`values` (a record's `fixed` or `created`, as read) with each sealed MCP tool's
    credentials taken from `servers` (the caller's policy); and the labels of the tools no
    server resolves (left sealed: such a call cannot be supervised as the policy fixed it)."""
    servers = tuple(servers)
    out = dict(values)
    missing: list[str] = []
    for key in SEALED_KEYS:
        tools = out.get(key)
        if not isinstance(tools, list):
            continue
        found = []
        for tool in tools:
            resolved_tool = _resolve(tool, servers) if _is_mcp(tool) else tool
            if resolved_tool is None:
                missing.append(str(tool.get("server_label")))
                resolved_tool = tool
            found.append(resolved_tool)
        out[key] = found
    return out, missing
