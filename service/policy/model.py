"""The server-side session policy: what ops allow, validated once at start-up.

Ops set it through `POLICY_*` environment variables (see `.env.example`);
`Settings` loads it, and per-caller profiles override it field by field. A
policy that contradicts itself (a default outside its allowed list, malformed
tools JSON, an unknown mode) fails validation, so the process refuses to start
instead of failing at the first mint (an MCP servers file that cannot be
read, or names a server twice, too). Model names are not checked against a
list: any name ops allow is allowed, and `service.policy.catalog` warns about
unknown and retiring ones. Applying the policy to a request lives in
`service.policy.rules` (realtime) and `service.policy.rules_sessions`
(transcription, translation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_settings import NoDecode

from service.contract.beta import BETA_VOICES, AudioFormat, MaxTokens, Tool
from service.contract.ga_tools import REASONING_EFFORTS, ReasoningEffort
from service.contract.parsing import PROMPT_OBJECTS_SHUT_DOWN
from service.core.env_values import CsvStr, split_csv
from service.policy.live import LivePolicy, fold_live
from service.policy.mcp import McpServer, read_mcp_servers


def empty_is_none(value: object) -> object:
    """An empty env value (`POLICY_INSTRUCTIONS=`) means unset, not an empty string."""
    return None if value == "" else value


def read_tools(value: object) -> object:
    """Read `POLICY_TOOLS` as inline JSON, or as `@path` to a JSON file."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return ()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read tools file {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None


TurnDetectionKind: TypeAlias = Literal["server_vad", "semantic_vad", "none"]
OutputModality: TypeAlias = Literal["audio", "text"]
NoiseReduction: TypeAlias = Literal["near_field", "far_field"]
CsvModalities: TypeAlias = Annotated[
    tuple[OutputModality, ...], NoDecode, BeforeValidator(split_csv)
]
CsvFormats: TypeAlias = Annotated[tuple[AudioFormat, ...], NoDecode, BeforeValidator(split_csv)]
CsvTurnDetection: TypeAlias = Annotated[
    tuple[TurnDetectionKind, ...], NoDecode, BeforeValidator(split_csv)
]
CsvNoiseReduction: TypeAlias = Annotated[
    tuple[NoiseReduction, ...], NoDecode, BeforeValidator(split_csv)
]
CsvEfforts: TypeAlias = Annotated[tuple[ReasoningEffort, ...], NoDecode, BeforeValidator(split_csv)]
SessionType: TypeAlias = Literal["realtime", "transcription", "translation"]
CsvSessionTypes: TypeAlias = Annotated[
    tuple[SessionType, ...], NoDecode, BeforeValidator(split_csv)
]
OptionalCsv: TypeAlias = Annotated[tuple[str, ...] | None, NoDecode, BeforeValidator(split_csv)]
"""A list where unset (None) means any value and `VAR=` (empty) means none."""
Speed: TypeAlias = Annotated[float, Field(ge=0.25, le=1.5)]
Ttl: TypeAlias = Annotated[int, Field(ge=10, le=7200)]
ALL_VOICES: tuple[str, ...] = (*BETA_VOICES, "marin", "cedar")
RETIRED_PROMPT_FIELDS = ("prompts", "prompt", "prompt_variables")
"""The prompt-object rules (`POLICY_PROMPTS`, `POLICY_PROMPT`, `POLICY_PROMPT_VARIABLES`)."""


class Policy(BaseModel):
    """Every rule the service applies to a requested session. Field = `POLICY_<NAME>`."""

    # Each field's docstring is its description: docs/reference.md is generated from them.
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    allowed_models: CsvStr = ("gpt-realtime-2", "gpt-realtime-2.1-mini")
    """Realtime models callers may ask for, comma-separated; any name works (a new model needs no
    release), unknown and retiring names are warned about at start-up."""
    default_model: str = "gpt-realtime-2"
    """The model of a session that names none; must be in POLICY_ALLOWED_MODELS."""
    allowed_voices: CsvStr = ALL_VOICES
    """Built-in voice names, and custom voices by id (`voice_...`, sent as `{"id": ...}`)."""
    default_voice: str = "alloy"
    """The voice of a session that names none; must be in POLICY_ALLOWED_VOICES."""
    instructions: Annotated[str | None, BeforeValidator(empty_is_none)] = None
    """The server's instructions (never shown by `GET /v1/policy`; visible to the client in
    `session.created`)."""
    instructions_mode: Literal["server", "append", "client"] = "client"
    """`server`: clients may not send instructions; `append`: client text after the server's;
    `client`: client text replaces the server default."""
    max_instructions_chars: Annotated[int, Field(ge=0)] = 8000
    """Longest client instructions accepted, in characters."""
    tracing: Literal["off", "auto", "client"] = "off"
    """`off` (null, clients may not enable it), `auto` (forced on), or `client` (the client
    decides)."""
    tools: Annotated[tuple[Tool, ...], NoDecode, BeforeValidator(read_tools)] = ()
    """The server's tools: a JSON array of function tools, or `@/path/to/tools.json`."""
    tools_mode: Literal["server", "subset", "client"] = "server"
    """`server`: exactly POLICY_TOOLS; `subset`: clients pick server tools by name (the server's
    definitions are sent); `client`: any."""
    max_output_tokens: MaxTokens = "inf"
    """Cap on output tokens per response (1-4096), or `inf`; requests asking for more, `inf` or
    nothing are capped."""
    token_ttl_seconds: Ttl = 60
    """Client secret lifetime when the client asks for none."""
    max_token_ttl_seconds: Ttl = 600
    """The longest client secret lifetime a client may ask for."""
    on_violation: Literal["reject", "clamp"] = "reject"
    """`reject`: 403 listing every violation; `clamp`: the nearest allowed value, reported in
    `policy_decisions` and X-Policy-Decisions."""
    allowed_transcription_models: CsvStr = (
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-realtime-whisper",
    )
    """Transcription models callers may ask for; the first is the default, empty disables
    transcription (`gpt-4o-*-transcribe` and `whisper-1` shut down on 2027-02-26)."""
    allowed_output_modalities: CsvModalities = ("audio", "text")
    """Output modalities callers may ask for: `audio` (audio plus transcript) and/or `text`."""
    allowed_audio_formats: CsvFormats = ("pcm16", "g711_ulaw", "g711_alaw")
    """Input and output audio formats: `pcm16`, `g711_ulaw`, `g711_alaw`."""
    allowed_turn_detection: CsvTurnDetection = ("server_vad", "semantic_vad", "none")
    """Turn detection types: `server_vad`, `semantic_vad`, `none` (`none` lets clients turn it
    off)."""
    allowed_noise_reduction: CsvNoiseReduction = (
        "near_field",
        "far_field",
    )
    """Noise reduction types callers may ask for (off is always allowed)."""
    speed_min: Speed = 0.25
    """Slowest spoken speed a client may ask for (OpenAI allows 0.25-1.5)."""
    speed_max: Speed = 1.5
    """Fastest spoken speed a client may ask for."""
    reasoning_efforts: CsvEfforts = REASONING_EFFORTS
    """Reasoning efforts callers may ask for (`minimal`, `low`, `medium`, `high`, `xhigh`)."""
    truncation: Literal["client", "auto", "disabled"] = "client"
    """`client` lets callers choose; `auto` or `disabled` is pinned by the server."""
    session_types: CsvSessionTypes = ("realtime", "transcription", "translation")
    """Which kinds of session may be minted at all."""
    transcription_languages: OptionalCsv = None
    """Input languages (ISO-639-1) a transcription may name; unset: any."""
    allowed_translation_models: CsvStr = ("gpt-realtime-translate",)
    """Translation models callers may ask for."""
    default_translation_model: str = "gpt-realtime-translate"
    """The translation model of a session that names none (and under `clamp`)."""
    translation_languages: OptionalCsv = None
    """Target languages of translation sessions; unset: any."""
    mcp_servers_file: Annotated[
        tuple[McpServer, ...], NoDecode, BeforeValidator(read_mcp_servers)
    ] = ()
    """MCP servers callers may pick by label, read from this file (credentials included)."""
    idle_timeout_ms_max: Annotated[int, Field(ge=5000, le=30000)] | None = None
    """Cap on `turn_detection.idle_timeout_ms`; unset leaves OpenAI's own 30000."""
    live: LivePolicy = Field(default_factory=LivePolicy)
    """GPT-Live sessions (`POLICY_LIVE_*`); see `service.policy.live`."""

    @model_validator(mode="before")
    @classmethod
    def _live_table(cls, data: Any) -> Any:
        return fold_live(data)

    @model_validator(mode="before")
    @classmethod
    def _no_prompt_objects(cls, data: Any) -> Any:
        """POLICY_PROMPTS and POLICY_PROMPT named prompt objects, which OpenAI shut down.

        Said for what it is, rather than as an unknown variable: such a policy
        once worked, and every session it would pin or allow is refused now.
        """
        if not isinstance(data, dict):
            return data
        named = [f"POLICY_{key.upper()}" for key in RETIRED_PROMPT_FIELDS if key in data]
        if named:
            raise ValueError(
                f"{', '.join(named)}: {PROMPT_OBJECTS_SHUT_DOWN}, so no session can use one; "
                f"remove {'it' if len(named) == 1 else 'them'} and put the prompt's text in "
                "POLICY_INSTRUCTIONS"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a policy whose parts contradict each other, naming the variables."""
        problems: list[str] = []
        if self.default_model not in self.allowed_models:
            problems.append(
                f"POLICY_DEFAULT_MODEL '{self.default_model}' is not in POLICY_ALLOWED_MODELS"
            )
        if self.default_voice not in self.allowed_voices:
            problems.append(
                f"POLICY_DEFAULT_VOICE '{self.default_voice}' is not in POLICY_ALLOWED_VOICES"
            )
        if (
            self.allowed_translation_models
            and self.default_translation_model not in self.allowed_translation_models
        ):
            problems.append(
                f"POLICY_DEFAULT_TRANSLATION_MODEL '{self.default_translation_model}' is not in "
                "POLICY_ALLOWED_TRANSLATION_MODELS"
            )
        labels = [server.label for server in self.mcp_servers_file]
        if len(set(labels)) != len(labels):
            problems.append("POLICY_MCP_SERVERS_FILE: server labels must be unique")
        if self.token_ttl_seconds > self.max_token_ttl_seconds:
            problems.append("POLICY_TOKEN_TTL_SECONDS exceeds POLICY_MAX_TOKEN_TTL_SECONDS")
        if self.speed_min > self.speed_max:
            problems.append("POLICY_SPEED_MIN exceeds POLICY_SPEED_MAX")
        for name in (
            "allowed_output_modalities",
            "allowed_audio_formats",
            "allowed_turn_detection",
        ):
            if not getattr(self, name):
                problems.append(f"POLICY_{name.upper()} must name at least one value")
        names = [tool.name for tool in self.tools]
        if any(not name for name in names):
            problems.append("POLICY_TOOLS: every tool needs a name")
        elif len(set(names)) != len(names):
            problems.append("POLICY_TOOLS: tool names must be unique")
        if self.instructions_mode == "server" and self.instructions is None:
            problems.append("POLICY_INSTRUCTIONS_MODE=server needs POLICY_INSTRUCTIONS")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tool_names(self) -> tuple[str, ...]:
        """Names of the server's tools, the vocabulary of `tools_mode=subset`."""
        return tuple(tool.name or "" for tool in self.tools)

    def public_view(self, profile: str) -> dict[str, Any]:
        """What a caller may choose, for UIs (`GET /v1/policy`).

        Deliberately omits the server's instructions and the tool definitions'
        bodies: both are the operator's, not the caller's.
        """
        return {
            "profile": profile,
            "models": {"allowed": list(self.allowed_models), "default": self.default_model},
            "voices": {"allowed": list(self.allowed_voices), "default": self.default_voice},
            "instructions_mode": self.instructions_mode,
            "max_instructions_chars": self.max_instructions_chars,
            "tracing": self.tracing,
            "tools_mode": self.tools_mode,
            "tools": list(self.tool_names),
            "max_output_tokens": self.max_output_tokens,
            "token_ttl_seconds": {
                "default": self.token_ttl_seconds,
                "max": self.max_token_ttl_seconds,
            },
            "transcription_models": list(self.allowed_transcription_models),
            "output_modalities": list(self.allowed_output_modalities),
            "audio_formats": list(self.allowed_audio_formats),
            "turn_detection": list(self.allowed_turn_detection),
            "noise_reduction": list(self.allowed_noise_reduction),
            "speed": {"min": self.speed_min, "max": self.speed_max},
            "on_violation": self.on_violation,
            "reasoning_efforts": list(self.reasoning_efforts),
            "truncation": self.truncation,
            "idle_timeout_ms_max": self.idle_timeout_ms_max,
            "mcp_servers": [server.public() for server in self.mcp_servers_file],
            "session_types": list(self.session_types),
            "transcription_languages": _any_or_list(self.transcription_languages),
            "translation_models": {
                "allowed": list(self.allowed_translation_models),
                "default": self.default_translation_model,
            },
            "translation_languages": _any_or_list(self.translation_languages),
            "calls": ["realtime", "live"] if self.live.allowed_models else ["realtime"],
            "live": self.live.public_view(self.allowed_voices, self.default_voice),
        }


def _any_or_list(values: tuple[str, ...] | None) -> list[str] | str:
    """An optional list as `GET /v1/policy` shows it: `any` when unset."""
    return "any" if values is None else list(values)
