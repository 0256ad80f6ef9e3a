"""OpenAI's GA client-secret request, for the fields this service carries.

`POST /v1/realtime/client_secrets` (GA) nests audio settings, writes audio
formats as objects and names `output_modalities` and `max_output_tokens`; see
OpenAI's `RealtimeCreateClientSecretRequest` schema. These models parse the GA
endpoint's input and the emulator's, as strictly as the live API: unknown
parameters are refused.

Only GA fields that map onto the beta `Session` are modelled, because the
policy is written against the beta shape. GA-only features (prompts, reasoning,
truncation, MCP tools, custom voices, ...) are listed in `GA_ONLY_FIELDS` and
refused with a message that says why, instead of being forwarded unchecked.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from service.contract.beta import (
    DurationMs,
    ExpiresAfter,
    InputAudioNoiseReduction,
    InputAudioTranscription,
    MaxTokens,
    Model,
    StrictModel,
    Tool,
    Tracing,
)

GA_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "include",
        "prompt",
        "reasoning",
        "truncation",
        "parallel_tool_calls",
        "idle_timeout_ms",
        "delay",
        "keywords",
        "languages",
        "server_label",
        "server_url",
        "connector_id",
    }
)
"""GA parameters with no beta counterpart: refused by name so callers know why."""


class PcmFormat(StrictModel):
    """`pcm16` in the beta shape: 16-bit PCM at 24 kHz."""

    type: Literal["audio/pcm"]
    rate: Literal[24000] | None = None


class PcmuFormat(StrictModel):
    """`g711_ulaw` in the beta shape."""

    type: Literal["audio/pcmu"]


class PcmaFormat(StrictModel):
    """`g711_alaw` in the beta shape."""

    type: Literal["audio/pcma"]


AudioFormat: TypeAlias = Annotated[PcmFormat | PcmuFormat | PcmaFormat, Field(discriminator="type")]


class ServerVad(StrictModel):
    """Volume-based turn detection."""

    type: Literal["server_vad"]
    create_response: bool | None = None
    interrupt_response: bool | None = None
    prefix_padding_ms: DurationMs | None = None
    silence_duration_ms: DurationMs | None = None
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class SemanticVad(StrictModel):
    """Turn detection by a model that estimates whether the user has finished."""

    type: Literal["semantic_vad"]
    create_response: bool | None = None
    interrupt_response: bool | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


TurnDetection: TypeAlias = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class AudioInput(StrictModel):
    """`audio.input`: format, noise reduction, transcription, turn detection."""

    format: AudioFormat | None = None
    """The input audio's format (`input_audio_format` in the beta shape)."""
    noise_reduction: InputAudioNoiseReduction | None = None
    """Noise reduction before VAD and the model; null leaves it off."""
    transcription: InputAudioTranscription | None = None
    """Asynchronous transcription of the input; null leaves it off."""
    turn_detection: TurnDetection | None = None
    """Server or semantic VAD; an explicit null turns turn detection off."""


class AudioOutput(StrictModel):
    """`audio.output`: format, voice, speed."""

    format: AudioFormat | None = None
    """The output audio's format."""
    voice: str | None = None
    """The voice the model speaks with."""
    speed: Annotated[float, Field(ge=0.25, le=1.5)] | None = None
    """Spoken response speed, 0.25 to 1.5."""


class Audio(StrictModel):
    """The GA session's nested audio settings."""

    input: AudioInput | None = None
    output: AudioOutput | None = None


class ToolChoiceFunction(StrictModel):
    """Force the model to call one named function."""

    type: Literal["function"]
    name: str


OutputModalities: TypeAlias = Annotated[
    list[Literal["text", "audio"]], Field(min_length=1, max_length=1)
]
"""GA allows `["audio"]` (audio with its transcript) or `["text"]`, never both."""


class GASession(StrictModel):
    """`RealtimeSessionCreateRequestGA`, restricted to what the beta shape can express."""

    type: Literal["realtime"]
    model: Model | None = None
    instructions: str | None = None
    output_modalities: OutputModalities | None = None
    max_output_tokens: MaxTokens | None = None
    audio: Audio | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    tracing: Tracing | None = None


class ClientSecretRequest(StrictModel):
    """`RealtimeCreateClientSecretRequest`: the GA endpoint's body and the emulator's."""

    expires_after: ExpiresAfter | None = None
    session: GASession | None = None
