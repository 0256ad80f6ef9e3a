"""MCP credentials out of call records: sealed for the store, resolved from the policy.

A call's record (`service.calls.records`) keeps the MCP tools the policy
fixed, in `fixed` and in `created` (a Realtime session's `tools`, from
`POLICY_MCP_SERVERS_FILE`; a GPT-Live delegation's backend tools, from
`POLICY_LIVE_DELEGATION_FILE`), and the store is read by more than the
service (whoever can read Redis). So a record is written with each MCP tool
*sealed*: its identity (label, URL or connector, description, allowed tools,
approval rule: everything but `UNECHOED`) and a digest of its credentials
(`authorization`, `headers`) in their place. Comparison needs no more:
OpenAI does not echo credentials back (`service.calls.fixed.UNECHOED`).

The supervising worker holds its calls' tools with their credentials (it has
them anyway, in its policy), so what it restates and reverts carries them. A
worker that adopts a call reads the sealed record and *resolves* each tool
from the caller's policy (its profile, as every rule is: its servers file and
its delegation) by identity:

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

The digest (BLAKE2b, unkeyed: a key would have to be shared by every worker
and outlive its rotation) only tells credentials apart; a header of little
entropy (`X-Tenant: acme`) could be guessed from it by someone reading the
store, a token could not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import structlog

from service.calls.fixed import DIGEST, UNECHOED
from service.policy import Policy

log = structlog.get_logger("service.calls")


def _digest(tool: Mapping[str, Any]) -> str:
    """A digest of a tool's credentials (canonical JSON): it tells a rotation, not a value."""
    secret = {key: tool[key] for key in sorted(UNECHOED) if key in tool}
    canonical = orjson.dumps(secret, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16, person=b"rtp-mcp-creds").hexdigest()


def _is_mcp(value: Mapping[str, Any]) -> bool:
    return value.get("type") == "mcp"


def _identity(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tool.items() if key not in UNECHOED and key != DIGEST}


def sealed(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (a record's `fixed` or `created`) with each MCP tool in it, however deep
    (a delegation's), sealed: its identity and the digest of its credentials."""
    out: dict[str, Any] = _sealed(values)
    return out


def _sealed(value: Any) -> Any:
    if isinstance(value, Mapping):
        if _is_mcp(value) and any(key in value for key in UNECHOED):
            return {**_identity(value), DIGEST: _digest(value)}
        return {key: _sealed(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_sealed(child) for child in value]
    return value


def definitions(policy: Policy) -> list[dict[str, Any]]:
    """The MCP tools `policy` defines, credentials included: its servers file's, and those
    of its GPT-Live delegation."""
    found = [server.as_tool() for server in policy.mcp_servers_file]
    stack: list[Any] = [policy.live.delegation()]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if _is_mcp(node):
                found.append(dict(node))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _resolve(tool: Mapping[str, Any], known: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A sealed tool with the credentials of the policy's tool of its identity, if any."""
    for candidate in known:
        if _identity(candidate) == _identity(tool):
            if _digest(candidate) != tool[DIGEST]:
                log.warning("call_mcp_credentials_changed", server_label=tool.get("server_label"))
            return dict(candidate)
    return None


def resolved(
    values: Mapping[str, Any], known: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """`values` (a record's `fixed` or `created`, as read) with each sealed MCP tool's
    credentials taken from `known` (the caller's policy's `definitions`); and the labels of
    the tools none resolves (left sealed: such a call cannot be supervised as the policy
    fixed it). Tools not sealed (an older record's) are left as they are."""
    missing: list[str] = []
    out: dict[str, Any] = _resolved(values, tuple(known), missing)
    return out, missing


def _resolved(value: Any, known: tuple[Mapping[str, Any], ...], missing: list[str]) -> Any:
    if isinstance(value, Mapping):
        if _is_mcp(value) and DIGEST in value:
            tool = _resolve(value, known)
            if tool is None:
                missing.append(str(value.get("server_label")))
                return dict(value)
            return tool
        return {key: _resolved(child, known, missing) for key, child in value.items()}
    if isinstance(value, list):
        return [_resolved(child, known, missing) for child in value]
    return value
