"""Policy rules for tools and tool choice.

Function tools follow POLICY_TOOLS_MODE (`server`, `subset`, `client`). MCP
tools reach a session only from the server's own list (POLICY_MCP_SERVERS_FILE,
which also holds their credentials); a caller's MCP tool is refused with a
message saying so, never forwarded with whatever server and token it names.
"""

from __future__ import annotations

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
    """Function tools per POLICY_TOOLS_MODE; caller MCP tools refused; tool_choice checked."""
    requested = m.request.tools
    asked: list[Tool] | None = requested or None  # `tools: []` is the API's default: no-op
    mcp = [tool for tool in asked or () if isinstance(tool, McpTool)]
    functions = [tool for tool in asked or () if isinstance(tool, FunctionTool)]
    if mcp:
        m.violate(
            "tools",
            "MCP tools come only from the server's list (POLICY_MCP_SERVERS_FILE): "
            f"{', '.join(tool.server_label for tool in mcp)}",
            server_tools(m) or None,
        )
    effective = _function_tools(m, functions if asked is not None else None)
    _tool_choice(m, effective)


def _function_tools(m: Merge[RealtimeSession], asked: list[FunctionTool] | None) -> set[str]:
    """Apply POLICY_TOOLS_MODE; the names of the session's function tools."""
    p = m.policy
    offered = server_tools(m)
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


def _tool_choice(m: Merge[RealtimeSession], names: set[str]) -> None:
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
    m.violate(
        "tool_choice",
        f"tool_choice names the MCP server '{choice.server_label}', which is not among the "
        "session's tools (MCP servers come from POLICY_MCP_SERVERS_FILE)",
        None,
    )
