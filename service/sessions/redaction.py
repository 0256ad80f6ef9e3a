"""What callers may see of a session: the operator's instructions, tools and credentials hidden.

Dry runs and `policy_decisions` show what the policy did without the values
the operator set (as `GET /v1/policy` hides them), and every session answered
to a caller loses the MCP credentials OpenAI may echo back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.policy import Decision

REDACTED = "[redacted: set by the server]"
OPERATOR_ONLY = frozenset({"instructions", "tools", "delegation", "triggers"})
"""Fields whose server-set values are the operator's: shown to callers only redacted."""


def server_set(decisions: Iterable[Decision]) -> frozenset[str]:
    """The operator-only fields whose effective value the policy supplied (not the caller)."""
    return frozenset(d.param for d in decisions if d.param in OPERATOR_ONLY)


def _tool_brief(tool: Any) -> dict[str, Any]:
    """A server-set tool as callers see it: its name (or MCP label), nothing else."""
    if isinstance(tool, dict) and tool.get("type") == "mcp":
        return {"type": "mcp", "server_label": tool.get("server_label")}
    name = tool.get("name") if isinstance(tool, dict) else None
    return {"type": "function", "name": name, "description": REDACTED}


def tool_name(tool: Any) -> Any:
    if isinstance(tool, dict):
        return tool.get("name") or tool.get("server_label")
    return None


def without_credentials(session: Mapping[str, Any]) -> dict[str, Any]:
    """`session` without MCP credentials, which OpenAI may echo and callers must not see."""
    tools = session.get("tools")
    if not isinstance(tools, list) or not any(
        isinstance(tool, dict) and tool.get("type") == "mcp" for tool in tools
    ):
        return dict(session)
    cleaned = [
        {k: v for k, v in tool.items() if k not in ("authorization", "headers")}
        if isinstance(tool, dict)
        else tool
        for tool in tools
    ]
    return {**session, "tools": cleaned}


def redact(session: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """A session view with server instructions hidden and server tools reduced to names."""
    shown = without_credentials(dict(session))
    if "instructions" in fields and shown.get("instructions") is not None:
        shown["instructions"] = REDACTED
    if "tools" in fields and shown.get("tools"):
        shown["tools"] = [_tool_brief(tool) for tool in shown["tools"]]
    if "delegation" in fields and isinstance(shown.get("delegation"), dict):
        shown["delegation"] = delegation_brief(shown["delegation"])
    if "triggers" in fields and isinstance(shown.get("triggers"), list):
        shown["triggers"] = triggers_brief(shown["triggers"])
    return shown


def delegation_brief(delegation: Any) -> Any:
    """A server-set GPT-Live delegation as callers see it: its type, nothing of its prompt."""
    if not isinstance(delegation, dict):
        return delegation
    return {"type": delegation.get("type"), "configuration": REDACTED}


def triggers_brief(triggers: Any) -> Any:
    """Server-set GPT-Live triggers as callers see them: which transcript they watch, not
    the questions (the operator's)."""
    if not isinstance(triggers, list):
        return triggers
    return [
        {"type": t.get("type"), "event_type": t.get("event_type"), "decisions": REDACTED}
        if isinstance(t, dict)
        else REDACTED
        for t in triggers
    ]
