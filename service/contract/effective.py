"""The effective session as it goes upstream: the JSON every kind of session sends, typed.

The policy's outcome is the request's own JSON (only what the caller set)
with the policy's defaults, pins and clamps applied, nulls left out: the
exact body OpenAI receives. These TypedDicts say what that JSON holds, so
what reads it (the audit line, the fixed fields of a call, the beta views,
redaction) reads named keys, not `dict[str, Any]`. One shape covers every
kind (Realtime, transcription, translation, GPT-Live); a key a kind does not
have is simply absent. Values OpenAI defines as open objects (a tool, a
delegation, turn detection) stay JSON objects.

Why not the session's pydantic model: rebuilding a typed model per update
measured ~22 µs per nested field (`model_copy` plus validating the value)
and ~9 µs per dump here, against a mint's whole policy budget of ~50 µs.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, TypedDict

JSON: TypeAlias = dict[str, Any]


class AudioInputJSON(TypedDict, total=False):
    """`audio.input`: format, noise reduction, transcription, turn detection (null: off)."""

    format: JSON
    noise_reduction: JSON
    transcription: JSON
    turn_detection: JSON | None


class AudioOutputJSON(TypedDict, total=False):
    """`audio.output`: format, voice (a name, or `{"id"}` for a custom voice), speed, language."""

    format: JSON
    voice: str | JSON
    speed: float
    language: str


class AudioJSON(TypedDict, total=False):
    """`audio`: its input and output sides."""

    input: AudioInputJSON
    output: AudioOutputJSON


class SessionJSON(TypedDict, total=False):
    """The effective session of any kind, as sent upstream."""

    type: Literal["realtime", "transcription", "translation"]
    model: str
    instructions: str
    output_modalities: list[str]
    max_output_tokens: int | Literal["inf"]
    audio: AudioJSON
    tools: list[JSON]
    tool_choice: str | JSON
    parallel_tool_calls: bool
    tracing: Literal["auto"] | JSON | None
    reasoning: JSON
    truncation: str | JSON
    include: list[str]
    # GPT-Live
    delegation: JSON
    client: JSON
    idle_timeout_s: int
    input: list[JSON]
    store: bool
    safety_identifier: str
    triggers: list[JSON]
    wake_policy: JSON
