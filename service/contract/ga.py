"""OpenAI's GA session requests: the canonical shapes the policy reasons about.

`POST /v1/realtime/client_secrets` takes `RealtimeCreateClientSecretRequest`
(a realtime or a transcription session); `POST
/v1/realtime/translations/client_secrets` takes a translation session. Every
field of OpenAI's `RealtimeSessionCreateRequestGA`,
`RealtimeTranscriptionSessionCreateRequestGA` and
`RealtimeTranslationSessionCreateRequest` is modelled here (nested types in
`ga_audio` and `ga_tools`), as strictly as the live API parses them: unknown
parameters, wrong types and out-of-range values are refused.

`null` is accepted for every optional field and means "not set", so that a
session the service (or OpenAI, or the SDK's `model_dump()`) returned can be
sent back as a request. Read-only fields of such a session (`id`, `object`,
`expires_at`) are accepted and dropped: OpenAI assigns them. A `prompt` is
parsed only to be refused with the reason (OpenAI shut prompt objects down).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from service.contract.beta import ExpiresAfter, MaxTokens, StrictModel, Tracing
from service.contract.ga_audio import Audio, NoiseReduction, TranscriptionAudio
from service.contract.ga_tools import Prompt, Reasoning, Tool, ToolChoice, Truncation

Include: TypeAlias = list[Literal["item.input_audio_transcription.logprobs"]]
"""Extra output: the input transcription's log probabilities."""

OutputModalities: TypeAlias = Annotated[
    list[Literal["text", "audio"]], Field(min_length=1, max_length=1)
]
"""GA allows `["audio"]` (audio with its transcript) or `["text"]`, never both."""

READ_ONLY = frozenset({"id", "object", "expires_at"})
"""Fields of a returned session that OpenAI assigns: accepted back, never sent."""


class ReadOnlyFields(StrictModel):
    """What OpenAI assigns to a session; accepted on a round trip and then dropped."""

    id: SkipJsonSchema[str | None] = None
    object: SkipJsonSchema[str | None] = None
    expires_at: SkipJsonSchema[int | None] = None


class RealtimeSession(ReadOnlyFields):
    """`RealtimeSessionCreateRequestGA`: a speech-to-speech session, every field."""

    type: Literal["realtime"]
    model: str | None = None
    """Any name; whether it is allowed is `POLICY_ALLOWED_MODELS`'s call."""
    instructions: str | None = None
    output_modalities: OutputModalities | None = None
    max_output_tokens: MaxTokens | None = None
    audio: Audio | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    tracing: Tracing | None = None
    prompt: SkipJsonSchema[Prompt | None] = None
    """OpenAI's field, parsed so that a prompt is refused saying why (prompt objects are
    shut down: `parsing.PROMPT_OBJECTS_SHUT_DOWN`), never minted; not in the document."""
    reasoning: Reasoning | None = None
    truncation: Truncation | None = None
    include: Include | None = None


class TranscriptionSession(ReadOnlyFields):
    """`RealtimeTranscriptionSessionCreateRequestGA`: input transcription only."""

    type: Literal["transcription"]
    audio: TranscriptionAudio | None = None
    include: Include | None = None


GASession: TypeAlias = Annotated[
    RealtimeSession | TranscriptionSession, Field(discriminator="type")
]


class ClientSecretRequest(StrictModel):
    """`RealtimeCreateClientSecretRequest`: the GA endpoint's body and the emulator's."""

    expires_after: ExpiresAfter | None = None
    session: GASession | None = None


class TranslationInputTranscription(StrictModel):
    """Source-language transcript deltas for a translation session."""

    model: str


class TranslationAudioInput(StrictModel):
    """A translation session's input: optional transcription and noise reduction."""

    transcription: TranslationInputTranscription | None = None
    noise_reduction: NoiseReduction | None = None


class TranslationAudioOutput(StrictModel):
    """A translation session's output: the target language."""

    language: str | None = None


class TranslationAudio(StrictModel):
    """Input and output audio of a translation session."""

    input: TranslationAudioInput | None = None
    output: TranslationAudioOutput | None = None


class TranslationSession(ReadOnlyFields):
    """`RealtimeTranslationSessionCreateRequest`: interpret input audio into a language."""

    type: SkipJsonSchema[Literal["translation"] | None] = None
    """Only on sessions OpenAI returns; accepted back and dropped."""
    model: str
    audio: TranslationAudio | None = None


class TranslationClientSecretRequest(StrictModel):
    """`RealtimeTranslationClientSecretCreateRequest`."""

    expires_after: ExpiresAfter | None = None
    session: TranslationSession
