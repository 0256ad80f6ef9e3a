"""Policy rules for tools and tool choice.

Function tools follow POLICY_TOOLS_MODE (`server`, `subset`, `client`). MCP
servers reach a session only from the server's own list (POLICY_MCP_SERVERS_FILE,
which also holds their credentials): a caller picks one by label and the
server's definition is sent; a caller's own server URL or token is refused,
never forwarded.
"""

from __future__ import annotations

from typing import Any

from service.contract.ga import RealtimeSession
from service.contract.ga_tools import FunctionTool, McpTool, Tool, ToolChoiceFunction
from service.policy.merge import Merge, allowed_text


def server_tools(m: Merge[RealtimeSession]) -> list[dict[str, object]]:
    """The server's function tools as GA sends them (`type` always written)."""
    return [
        {"type": "function", **tool.model_dump(mode="json", exclude_none=True)}
        for tool in m.policy.tools
    ]


def tools(m: Merge[RealtimeSession]) -> None:
    """Function tools per POLICY_TOOLS_MODE, MCP servers by label, then tool_choice."""
    requested = m.request.tools
    asked: list[Tool] | None = requested or None  # `tools: []` is the API's default: no-op
    mcp = [tool for tool in asked or () if isinstance(tool, McpTool)]
    functions = [tool for tool in asked or () if isinstance(tool, FunctionTool)]
    names = _function_tools(m, functions if asked is not None else None)
    servers = _mcp_servers(m, mcp)
    if mcp:
        chosen = m.updates.get("tools")
        if chosen is None:
            chosen = [tool.model_dump(mode="json", exclude_none=True) for tool in functions]
        m.pin("tools", [*chosen, *servers.values()], "server definitions of the chosen MCP servers")
    _tool_choice(m, names, servers)


CALLER_MCP_FIELDS = frozenset({"type", "server_label"})
CREDENTIALS = frozenset({"authorization", "headers"})


def _overridden(tool: McpTool, server: dict[str, Any]) -> list[str]:
    """Fields a caller's MCP tool sets differently from the server's own definition.

    A session the service returned carries its MCP servers as defined (minus
    credentials); sending it back repeats them, which is not overriding them.
    Credentials from a caller are always refused, whatever their value.
    """
    sent = tool.model_dump(mode="json", exclude_unset=True)
    return sorted(
        name
        for name, value in sent.items()
        if name not in CALLER_MCP_FIELDS
        and (name in CREDENTIALS or (value is not None and server.get(name) != value))
    )


def _mcp_servers(m: Merge[RealtimeSession], asked: list[McpTool]) -> dict[str, dict[str, Any]]:
    """The server's definitions of the MCP servers a caller picked by label."""
    offered = {server.label: server for server in m.policy.mcp_servers_file}
    chosen: dict[str, dict[str, Any]] = {}
    for tool in asked:
        server = offered.get(tool.server_label)
        extra = _overridden(tool, server.as_tool()) if server is not None else []
        if server is None:
            m.refuse(
                "tools",
                f"MCP server '{tool.server_label}' is not offered (offered: "
                f"{allowed_text(tuple(offered))}); MCP servers come only from the server's "
                "list (POLICY_MCP_SERVERS_FILE)",
            )
            continue
        if extra:
            m.refuse(
                "tools",
                f"MCP server '{tool.server_label}' is defined by the server "
                f"(POLICY_MCP_SERVERS_FILE); send only type and server_label, not "
                f"{', '.join(extra)}",
            )
        chosen[tool.server_label] = server.as_tool()
    return chosen


def _echoes(asked: list[FunctionTool], offered: list[dict[str, object]]) -> bool:
    """Whether `asked` is exactly the server's tools, as a returned session carries them."""
    sent = [{"type": "function", **t.model_dump(mode="json", exclude_none=True)} for t in asked]
    return sent == offered


def _function_tools(m: Merge[RealtimeSession], asked: list[FunctionTool] | None) -> set[str]:
    """Apply POLICY_TOOLS_MODE; the names of the session's function tools."""
    p = m.policy
    offered = server_tools(m)
    if asked and _echoes(asked, offered):
        asked = None  # the server's own tools sent back (a returned session): not a choice
    if p.tools_mode == "server":
        if asked:
            m.violate("tools", "tools are set by the server; send none", offered or None)
        elif offered:
            m.pin("tools", offered, "server tools")
        return set(p.tool_names)
    if asked is None:
        if offered:
            m.default("tools", offered, "server tools")
        return set(p.tool_names)
    if p.tools_mode == "client":
        return {tool.name or "" for tool in asked}
    by_name = {str(tool["name"]): tool for tool in offered}
    unknown = [tool.name or "" for tool in asked if tool.name not in by_name]
    picked = {tool.name: by_name[tool.name] for tool in asked if tool.name in by_name}
    chosen = list(picked.values())
    if unknown:
        m.violate(
            "tools",
            f"tools not offered by the server: {', '.join(unknown)} (offered: "
            f"{allowed_text(p.tool_names)})",
            chosen,
        )
    else:
        m.pin("tools", chosen, "server definitions of the chosen tools")
    return {str(tool["name"]) for tool in chosen}


def _tool_choice(
    m: Merge[RealtimeSession], names: set[str], servers: dict[str, dict[str, Any]]
) -> None:
    choice = m.request.tool_choice
    if choice is None or isinstance(choice, str):
        return
    if isinstance(choice, ToolChoiceFunction):
        if choice.name not in names:
            m.violate(
                "tool_choice",
                f"tool_choice names '{choice.name}', which is not among the session's tools",
                None,
            )
        return
    server = servers.get(choice.server_label)
    if server is None:
        m.violate(
            "tool_choice",
            f"tool_choice names the MCP server '{choice.server_label}', which is not among the "
            "session's tools (MCP servers come from POLICY_MCP_SERVERS_FILE)",
            None,
        )
        return
    allowed = server.get("allowed_tools")
    if choice.name is not None and allowed is not None and choice.name not in allowed:
        m.violate(
            "tool_choice",
            f"tool_choice names '{choice.name}', which MCP server '{choice.server_label}' "
            f"does not offer (offered: {allowed_text(tuple(allowed))})",
            None,
        )
