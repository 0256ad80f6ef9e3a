"""GA audio settings: formats, noise reduction, transcription, turn detection, voices.

Shared by the three GA session kinds (realtime, transcription, translation).
Written from OpenAI's published schemas (`RealtimeAudioFormats`,
`AudioTranscription`, `RealtimeTurnDetection`, `VoiceIdsOrCustomVoice`) and,
where the published spec is older, the openai SDK 3.57 types
(`noise_reduction.strength`, transcription `delay`/`keywords`/`languages`,
custom voice objects). Every optional field accepts `null`, which the
service reads as "not set" and leaves out of the upstream body.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from service.contract.beta import JSON_INTEGER, DurationMs, StrictModel


class PcmFormat(StrictModel):
    """`audio/pcm`: 16-bit PCM at 24 kHz (`pcm16` in the beta shape)."""

    type: Literal["audio/pcm"]
    rate: Literal[24000] | None = None


class PcmuFormat(StrictModel):
    """`audio/pcmu`: G.711 µ-law (`g711_ulaw` in the beta shape)."""

    type: Literal["audio/pcmu"]


class PcmaFormat(StrictModel):
    """`audio/pcma`: G.711 A-law (`g711_alaw` in the beta shape)."""

    type: Literal["audio/pcma"]


AudioFormat: TypeAlias = Annotated[PcmFormat | PcmuFormat | PcmaFormat, Field(discriminator="type")]


class NoiseReduction(StrictModel):
    """Noise reduction before VAD and the model; null on the session leaves it off.

    A type is required (the API's own requirement on translation sessions, and
    the only way `POLICY_ALLOWED_NOISE_REDUCTION` can govern the kind).
    """

    type: Literal["near_field", "far_field"]
    """`near_field` for headsets, `far_field` for laptop or room microphones."""
    strength: Annotated[float, Field(ge=0.0)] | None = None
    """Suppression strength (SDK 3.57); higher suppresses more, 1 when first enabled."""


class Transcription(StrictModel):
    """Asynchronous transcription of the input audio (`AudioTranscription`)."""

    model: str | None = None
    """The transcription model; which ones are allowed is the policy's call."""
    language: str | None = None
    """ISO-639-1 code of the input language, e.g. `en`."""
    languages: Annotated[list[str], Field(min_length=1)] | None = None
    """Possible input languages (`gpt-transcribe`, `gpt-live-transcribe`)."""
    keywords: list[str] | None = None
    """Words or phrases that guide transcription (`gpt-transcribe`, `gpt-live-transcribe`)."""
    prompt: str | None = None
    """Keywords for `whisper-1`, free text for the `gpt-4o-*-transcribe` models."""
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None
    """How long to wait before emitting text (`gpt-realtime-whisper` only)."""


IdleTimeoutMs: TypeAlias = Annotated[int, Field(ge=5000, le=30000), JSON_INTEGER]


class ServerVad(StrictModel):
    """Volume-based turn detection."""

    type: Literal["server_vad"]
    create_response: bool | None = None
    interrupt_response: bool | None = None
    prefix_padding_ms: DurationMs | None = None
    silence_duration_ms: DurationMs | None = None
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    idle_timeout_ms: IdleTimeoutMs | None = None
    """5000-30000 ms of user silence after which the model responds (server VAD only)."""


class SemanticVad(StrictModel):
    """Turn detection by a model that estimates whether the user has finished."""

    type: Literal["semantic_vad"]
    create_response: bool | None = None
    interrupt_response: bool | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


TurnDetection: TypeAlias = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class CustomVoice(StrictModel):
    """A custom voice by id (`{"id": "voice_1234"}`), allowed by `POLICY_ALLOWED_VOICES`."""

    id: str


Voice: TypeAlias = str | CustomVoice
"""A built-in voice name or a custom voice object."""


def voice_name(voice: Voice | None) -> str | None:
    """The name the policy lists a voice under: the built-in name or the custom id."""
    return voice.id if isinstance(voice, CustomVoice) else voice


class AudioInput(StrictModel):
    """`audio.input`: format, noise reduction, transcription, turn detection."""

    format: AudioFormat | None = None
    noise_reduction: NoiseReduction | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = None
    """Server or semantic VAD; an explicit null turns turn detection off."""


class AudioOutput(StrictModel):
    """`audio.output`: format, voice, speed."""

    format: AudioFormat | None = None
    voice: Voice | None = None
    speed: Annotated[float, Field(ge=0.25, le=1.5)] | None = None
    """Spoken response speed, 0.25 to 1.5."""


class Audio(StrictModel):
    """The realtime session's nested audio settings."""

    input: AudioInput | None = None
    output: AudioOutput | None = None


class TranscriptionAudio(StrictModel):
    """A transcription session's audio: input only."""

    input: AudioInput | None = None
