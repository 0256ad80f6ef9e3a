"""GA tools, tool choice, prompts, truncation and reasoning.

From OpenAI's `RealtimeFunctionTool`, `MCPTool`, `ToolChoiceMCP`, `Prompt`,
`RealtimeTruncation` and `RealtimeReasoning` schemas and the SDK 3.57 types.
MCP tools are modelled in full so that a caller's MCP tool is understood (and
then governed by `POLICY_MCP_SERVERS_FILE`), never forwarded unread.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import Discriminator, Field, Tag

from service.contract.beta import INT64_MAX, JSON_INTEGER, JsonObject, StrictModel


class FunctionTool(StrictModel):
    """A function the model may call."""

    type: Literal["function"] | None = None
    name: str | None = None
    description: str | None = None
    parameters: JsonObject | None = None


class McpToolFilter(StrictModel):
    """Tools of an MCP server selected by name or by read-only hint."""

    tool_names: list[str] | None = None
    read_only: bool | None = None


class McpApprovalFilter(StrictModel):
    """Which MCP tools always, and which never, need the user's approval."""

    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


ConnectorId: TypeAlias = Literal[
    "connector_dropbox",
    "connector_gmail",
    "connector_googlecalendar",
    "connector_googledrive",
    "connector_microsoftteams",
    "connector_outlookcalendar",
    "connector_outlookemail",
    "connector_sharepoint",
]


class McpTool(StrictModel):
    """A remote MCP server or connector the model may call tools on."""

    type: Literal["mcp"]
    server_label: str
    server_url: str | None = None
    connector_id: ConnectorId | None = None
    tunnel_id: Annotated[str, Field(pattern=r"^tunnel_[a-z0-9]{32}$")] | None = None
    authorization: str | None = None
    """An OAuth token for the server; from the server's file only, never from a caller."""
    server_description: str | None = None
    headers: dict[str, str] | None = None
    """Headers for the server (credentials); from the server's file only."""
    allowed_tools: list[str] | McpToolFilter | None = None
    allowed_callers: (
        Annotated[list[Literal["direct", "programmatic"]], Field(min_length=1)] | None
    ) = None
    require_approval: McpApprovalFilter | Literal["always", "never"] | None = None
    defer_loading: bool | None = None


def _tool_kind(value: Any) -> str:
    """`function` unless the tool says `mcp`: GA's function tools may omit their type."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "mcp" if kind == "mcp" else "function"


Tool: TypeAlias = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[McpTool, Tag("mcp")],
    Discriminator(_tool_kind),
]


class ToolChoiceFunction(StrictModel):
    """Force the model to call one named function."""

    type: Literal["function"]
    name: str


class ToolChoiceMcp(StrictModel):
    """Force the model to call a tool (or any tool) of one MCP server."""

    type: Literal["mcp"]
    server_label: str
    name: str | None = None


ToolChoice: TypeAlias = (
    Literal["none", "auto", "required"]
    | Annotated[ToolChoiceFunction | ToolChoiceMcp, Field(discriminator="type")]
)


class PromptCacheBreakpoint(StrictModel):
    """Marks a prompt-cache breakpoint in a prompt variable."""

    mode: Literal["explicit"]


class InputText(StrictModel):
    """A text prompt variable."""

    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class InputImage(StrictModel):
    """An image prompt variable, by URL or file id."""

    type: Literal["input_image"]
    detail: Literal["low", "high", "auto", "original"]
    image_url: str | None = None
    file_id: str | None = None
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class InputFile(StrictModel):
    """A file prompt variable, by id, URL or inline data."""

    type: Literal["input_file"]
    file_id: str | None = None
    filename: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


PromptVariable: TypeAlias = (
    str | Annotated[InputText | InputImage | InputFile, Field(discriminator="type")]
)


class Prompt(StrictModel):
    """A dashboard-managed prompt (`pmpt_...`) with optional version and variables."""

    id: str
    version: str | None = None
    variables: dict[str, PromptVariable] | None = None


class TokenLimits(StrictModel):
    """Custom token limits for retention-ratio truncation."""

    post_instructions: Annotated[int, Field(ge=0, le=INT64_MAX), JSON_INTEGER] | None = None


class RetentionRatio(StrictModel):
    """Keep this fraction of the conversation when it exceeds the input token limit."""

    type: Literal["retention_ratio"]
    retention_ratio: Annotated[float, Field(ge=0.0, le=1.0)]
    token_limits: TokenLimits | None = None


Truncation: TypeAlias = Literal["auto", "disabled"] | RetentionRatio
"""`auto` (the default), `disabled`, or a retention ratio."""

ReasoningEffort: TypeAlias = Literal["minimal", "low", "medium", "high", "xhigh"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = ("minimal", "low", "medium", "high", "xhigh")


class Reasoning(StrictModel):
    """Reasoning settings for reasoning-capable realtime models."""

    effort: ReasoningEffort | None = None
