"""The tools and tool choice of a GPT-Live session's Responses backend.

From the openai SDK's `openai.types.live.responses_delegation_config_param`
(`Tool`, `ToolChoice` and their nested types). These reach OpenAI only
inside `delegation.responses`, which ops configure in a server-side file; they
are modelled in full so that file is checked when it loads, not when the first
session fails upstream.

Where the SDK has several variants that carry nothing but their `type`
(`web_search`, `computer`, ...), one model with a `Literal` of those types
stands for all of them: the accepted bodies are the same, and an error still
names the field.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field, Tag

from service.contract.beta import JsonObject, StrictModel
from service.contract.ga_tools import McpApprovalFilter, McpToolFilter
from service.contract.live_fields import Omittable, by_literal, tag_of


class FunctionTool(StrictModel):
    """A function the Responses backend may call while it handles a delegated task."""

    type: Literal["function"]
    name: str
    description: str | None = None
    """What the function does and when the backend model should call it."""
    parameters: JsonObject | None = None
    """The arguments, as a JSON Schema object."""
    strict: bool | None = None
    """Whether the backend model must follow `parameters` exactly."""


class HostedTool(StrictModel):
    """A tool the SDK describes by its `type` alone (hosted or client-executed)."""

    type: Literal[
        "web_search",
        "file_search",
        "code_interpreter",
        "image_generation",
        "custom",
        "namespace",
        "tool_search",
        "programmatic_tool_calling",
        "computer",
        "apply_patch",
    ]


class NetworkDisabled(StrictModel):
    """No outbound network access from the shell container."""

    type: Literal["disabled"]


class NetworkAllowlist(StrictModel):
    """Outbound network access to the listed domains only."""

    type: Literal["allowlist"]
    allowed_domains: list[str]


NetworkPolicy: TypeAlias = Annotated[
    Annotated[NetworkDisabled, Tag(tag_of(NetworkDisabled))]
    | Annotated[NetworkAllowlist, Tag(tag_of(NetworkAllowlist))],
    by_literal(NetworkDisabled, NetworkAllowlist),
]


class SkillReference(StrictModel):
    """A skill created with `/v1/skills`, by id."""

    type: Literal["skill_reference"]
    skill_id: str
    version: Annotated[str, Field(pattern=r"^(latest|[1-9][0-9]*)$")] | None = None
    """A positive integer or `latest`, as the SDK documents; omit for the default."""


class InlineSkillSource(StrictModel):
    """A skill's zip bundle, base64-encoded."""

    type: Literal["base64"]
    media_type: Literal["application/zip"]
    data: str


class InlineSkill(StrictModel):
    """A skill defined in the request itself."""

    type: Literal["inline"]
    name: str
    description: str
    source: InlineSkillSource


ContainerSkill: TypeAlias = Annotated[
    Annotated[SkillReference, Tag(tag_of(SkillReference))]
    | Annotated[InlineSkill, Tag(tag_of(InlineSkill))],
    by_literal(SkillReference, InlineSkill),
]


class ContainerAuto(StrictModel):
    """A container created for the request."""

    type: Literal["container_auto"]
    file_ids: list[str] | None = None
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None
    network_policy: NetworkPolicy | None = None
    skills: list[ContainerSkill] | None = None


class ContainerReference(StrictModel):
    """A container created with `/v1/containers`, by id."""

    type: Literal["container_reference"]
    container_id: str


class LocalSkill(StrictModel):
    """A skill in a directory of the local environment."""

    name: str
    description: str
    path: str


class LocalEnvironment(StrictModel):
    """Shell commands run by the application, which returns their results."""

    type: Literal["local"]
    skills: list[LocalSkill] | None = None


ShellEnvironment: TypeAlias = Annotated[
    Annotated[ContainerAuto, Tag(tag_of(ContainerAuto))]
    | Annotated[ContainerReference, Tag(tag_of(ContainerReference))]
    | Annotated[LocalEnvironment, Tag(tag_of(LocalEnvironment))],
    by_literal(ContainerAuto, ContainerReference, LocalEnvironment),
]


class ShellTool(StrictModel):
    """A shell, in a hosted container or run locally (results via `response.item.create`)."""

    type: Literal["shell"]
    environment: ShellEnvironment | None = None


class McpTool(StrictModel):
    """A remote MCP server or connector the backend may call tools on.

    `authorization` and `headers` are credentials: they belong in the ops
    file, and OpenAI omits `authorization` from returned session data.
    """

    type: Literal["mcp"]
    server_label: Omittable[str] = None
    server_url: str | None = None
    connector_id: str | None = None
    """Deprecated for models released after 2026-09-01 in favour of `server_url`/`tunnel_id`."""
    tunnel_id: str | None = None
    authorization: str | None = None
    headers: dict[str, str] | None = None
    server_description: str | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    allowed_callers: list[Literal["direct", "programmatic"]] | None = None
    require_approval: McpApprovalFilter | Literal["always", "never"] | None = None
    defer_loading: bool | None = None


BackendTool: TypeAlias = Annotated[
    Annotated[FunctionTool, Tag(tag_of(FunctionTool))]
    | Annotated[HostedTool, Tag(tag_of(HostedTool))]
    | Annotated[ShellTool, Tag(tag_of(ShellTool))]
    | Annotated[McpTool, Tag(tag_of(McpTool))],
    by_literal(FunctionTool, HostedTool, ShellTool, McpTool),
]
"""`Tool` in the SDK: a tool available to the Responses backend."""


class FunctionChoice(StrictModel):
    """Call this function."""

    type: Literal["function"]
    name: str


class McpChoice(StrictModel):
    """Call this tool of this MCP server."""

    type: Literal["mcp"]
    server_label: str
    name: str


class CustomChoice(StrictModel):
    """Call this custom tool."""

    type: Literal["custom"]
    name: str


class HostedChoice(StrictModel):
    """Call the tool of this `type`."""

    type: Literal[
        "file_search",
        "web_search",
        "web_search_preview",
        "image_generation",
        "computer",
        "code_interpreter",
        "programmatic_tool_calling",
        "shell",
        "apply_patch",
    ]


AllowedTool: TypeAlias = Annotated[
    Annotated[FunctionChoice, Tag(tag_of(FunctionChoice))]
    | Annotated[McpChoice, Tag(tag_of(McpChoice))]
    | Annotated[CustomChoice, Tag(tag_of(CustomChoice))]
    | Annotated[HostedChoice, Tag(tag_of(HostedChoice))],
    by_literal(FunctionChoice, McpChoice, CustomChoice, HostedChoice),
]


class AllowedToolsChoice(StrictModel):
    """Restrict the backend to a subset of its tools, and say how to pick among them."""

    type: Literal["allowed_tools"]
    tools: list[AllowedTool]
    mode: Literal["none", "auto", "required"] | None = None


BackendToolChoice: TypeAlias = (
    Literal["auto", "none", "required"]
    | Annotated[
        Annotated[FunctionChoice, Tag(tag_of(FunctionChoice))]
        | Annotated[McpChoice, Tag(tag_of(McpChoice))]
        | Annotated[CustomChoice, Tag(tag_of(CustomChoice))]
        | Annotated[HostedChoice, Tag(tag_of(HostedChoice))]
        | Annotated[AllowedToolsChoice, Tag(tag_of(AllowedToolsChoice))],
        by_literal(FunctionChoice, McpChoice, CustomChoice, HostedChoice, AllowedToolsChoice),
    ]
)
"""`ToolChoice` in the SDK: a mode, one tool, or an allowed subset."""
