"""The client contract: OpenAI's Realtime `Session`, as frontends send it.

Written from the seed specification (the Stainless-generated `Session` model of
the beta Realtime API): every field, nested type, Literal and documented range.
Clients that were written against `POST /v1/realtime/sessions` send exactly this
shape, so it is what the service accepts and answers in.

Input is strict, because everything here ends up on the caller's bill:
unknown fields, wrong JSON types and out-of-range values are refused (400, with
the dotted path of the field as `param`) rather than coerced or dropped.
Semantics and ranges quoted in the docstrings are OpenAI's:
https://platform.openai.com/docs/api-reference/realtime-sessions
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

AudioFormat: TypeAlias = Literal["pcm16", "g711_ulaw", "g711_alaw"]
"""`pcm16` is 16-bit PCM, 24 kHz, mono, little-endian; the others are G.711."""

BetaModel: TypeAlias = Literal[
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-4o-realtime-preview",
    "gpt-4o-realtime-preview-2024-10-01",
    "gpt-4o-realtime-preview-2024-12-17",
    "gpt-4o-realtime-preview-2025-06-03",
    "gpt-4o-mini-realtime-preview",
    "gpt-4o-mini-realtime-preview-2024-12-17",
]
"""The models the seed `Session.model` Literal names."""

GAModel: TypeAlias = Literal[
    "gpt-realtime-1.5",
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-realtime-mini",
    "gpt-realtime-mini-2025-10-06",
    "gpt-realtime-mini-2025-12-15",
    "gpt-audio-1.5",
    "gpt-audio-mini",
    "gpt-audio-mini-2025-10-06",
    "gpt-audio-mini-2025-12-15",
]
"""Models the GA API added after the seed was generated.

The seed predates them, but the GA endpoint this service mints on accepts them,
and ops ask for them (`gpt-realtime-mini` for a cheap tier). They extend the
seed's Literal; nothing else about the seed is widened.
"""

Model: TypeAlias = Literal[BetaModel, GAModel]
KNOWN_MODELS: frozenset[str] = frozenset(get_args(BetaModel) + get_args(GAModel))

BETA_VOICES: tuple[str, ...] = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
)
"""The voices the seed documents; `voice` itself is any string (new voices appear)."""


def _json_integer(value: object) -> object:
    """`300.0` is the integer 300: JSON has one number type, and JSON Schema says so."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JSON_INTEGER = BeforeValidator(_json_integer)
"""Last in an integer's `Annotated`, so its JSON Schema keeps the bounds before it."""
INT64_MAX = 2**63 - 1
DurationMs: TypeAlias = Annotated[int, Field(ge=0, le=INT64_MAX), JSON_INTEGER]
"""Milliseconds: non-negative, within 64 bits as OpenAI's integers are."""


def _integers_fit_64_bits(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse free-form JSON holding an integer beyond 64 bits, which no upstream reads."""
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, int) and not -(2**63) <= item <= INT64_MAX:
            raise ValueError("integers must fit in 64 bits")
    return value


JsonObject: TypeAlias = Annotated[dict[str, Any], AfterValidator(_integers_fit_64_bits)]
"""Free-form JSON (a tool's JSON Schema, trace metadata), its integers within 64 bits."""


class StrictModel(BaseModel):
    """Base for client input: no coercion, no unknown fields, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class InputAudioNoiseReduction(StrictModel):
    """Noise reduction applied before VAD and the model; `null` on the session turns it off.

    The seed lets `type` be absent or null, which leaves the kind of noise
    reduction to the upstream's unstated default, beyond the reach of
    `POLICY_ALLOWED_NOISE_REDUCTION`. So a type is required here: name one,
    or send null for the whole object to turn noise reduction off.
    """

    type: Literal["near_field", "far_field"]
    """`near_field` for headsets, `far_field` for laptop or conference-room microphones."""


class InputAudioTranscription(StrictModel):
    """Asynchronous transcription of input audio (guidance, not what the model heard)."""

    language: str | None = None
    """ISO-639-1 code of the input language, e.g. `en`; improves accuracy and latency."""
    model: str | None = None
    """`gpt-transcribe`, `gpt-live-transcribe`, `gpt-realtime-whisper`, ... (policy decides)."""
    prompt: str | None = None
    """Keywords for `whisper-1`, free text for the `gpt-4o-*-transcribe` models."""


class Tool(StrictModel):
    """A function the model may call."""

    description: str | None = None
    """When and how to call it, and what to tell the user when calling."""
    name: str | None = None
    """The name of the function."""
    parameters: JsonObject | None = None
    """The function's parameters as a JSON Schema object."""
    type: Literal["function"] | None = None
    """Always `function`."""


class TracingConfiguration(StrictModel):
    """Explicit tracing settings for the traces dashboard."""

    group_id: str | None = None
    """Group id for filtering and grouping traces."""
    metadata: JsonObject | None = None
    """Arbitrary metadata attached to the trace."""
    workflow_name: str | None = None
    """The name the trace is shown under."""


Tracing: TypeAlias = Literal["auto"] | TracingConfiguration
"""`auto` traces with default names; null disables; once on it cannot be changed."""


SERVER_VAD_ONLY = ("prefix_padding_ms", "silence_duration_ms", "threshold")
SEMANTIC_VAD_ONLY = ("eagerness",)


def _one_vad_type(schema: dict[str, Any]) -> None:
    """Document what the GA translation enforces: one VAD type's fields, never both.

    The beta model has one flat object with `type` optional (server VAD when
    absent); GA's VAD types are disjoint, so fields of the other type are
    refused. The schema says the same with one branch per type.
    """
    fields = schema.pop("properties")
    schema.pop("additionalProperties", None)  # each branch closes itself
    null = {"type": "null"}

    def branch(own: tuple[str, ...], other: tuple[str, ...], kind: Any) -> dict[str, Any]:
        properties = {name: fields[name] for name in fields if name not in other}
        properties.update({name: null for name in other})
        properties["type"] = kind
        return {"type": "object", "properties": properties, "additionalProperties": False}

    server = branch(SERVER_VAD_ONLY, SEMANTIC_VAD_ONLY, {"enum": ["server_vad", None]})
    semantic = branch(SEMANTIC_VAD_ONLY, SERVER_VAD_ONLY, {"const": "semantic_vad"})
    semantic["required"] = ["type"]
    schema["oneOf"] = [server, semantic]


class TurnDetection(StrictModel):
    """Server VAD (volume based) or semantic VAD (a turn-end model) settings."""

    model_config = ConfigDict(json_schema_extra=_one_vad_type)

    create_response: bool | None = None
    """Generate a response automatically when a VAD stop event occurs."""
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    """`semantic_vad` only: how soon to respond; `auto` equals `medium`."""
    interrupt_response: bool | None = None
    """Interrupt an ongoing response when a VAD start event occurs."""
    prefix_padding_ms: DurationMs | None = None
    """`server_vad` only: audio kept before detected speech, in ms (default 300)."""
    silence_duration_ms: DurationMs | None = None
    """`server_vad` only: silence that ends speech, in ms (default 500)."""
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """`server_vad` only: activation threshold, 0.0 to 1.0 (default 0.5)."""
    type: Literal["server_vad", "semantic_vad"] | None = None
    """The kind of turn detection; the API's default is `server_vad`."""


MaxTokens: TypeAlias = Annotated[int, Field(ge=1, le=4096), JSON_INTEGER] | Literal["inf"]
"""1 to 4096 output tokens per response, or `inf` for the model's maximum."""


class Session(StrictModel):
    """A Realtime session configuration, field for field as the seed defines it.

    `None` means "not set". Where OpenAI gives `null` a meaning of its own
    (turn detection, noise reduction, transcription, tracing: "set to null to
    turn off"), the difference between an absent field and an explicit null is
    kept in `model_fields_set`.
    """

    id: SkipJsonSchema[str | None] = None
    """`sess_...`; assigned by OpenAI: accepted on a round trip and dropped (undocumented)."""
    object: SkipJsonSchema[Literal["realtime.session"] | None] = None
    """Read-only, as `id`."""
    input_audio_format: AudioFormat | None = None
    """The format of input audio."""
    input_audio_noise_reduction: InputAudioNoiseReduction | None = None
    """Input noise reduction; null turns it off."""
    input_audio_transcription: InputAudioTranscription | None = None
    """Input transcription; off by default, null turns it off."""
    instructions: str | None = None
    """System instructions prepended to model calls."""
    max_response_output_tokens: MaxTokens | None = None
    """Cap on output tokens per response, tool calls included; default `inf`."""
    modalities: Annotated[list[Literal["text", "audio"]], Field(min_length=1)] | None = None
    """What the model responds with; `["text"]` disables audio."""
    model: str | None = None
    """The Realtime model: any name; `POLICY_ALLOWED_MODELS` decides (no release per model)."""
    output_audio_format: AudioFormat | None = None
    """The format of output audio (24 kHz for `pcm16`)."""
    speed: Annotated[float, Field(ge=0.25, le=1.5)] | None = None
    """Spoken response speed, 0.25 to 1.5; 1.0 is the default."""
    temperature: SkipJsonSchema[Annotated[float, Field(ge=0.6, le=1.2)] | None] = None
    """Sampling temperature, 0.6 to 1.2: the GA API has none, so it is refused (undocumented)."""
    tool_choice: str | None = None
    """`auto`, `none`, `required`, or the name of a function."""
    tools: list[Tool] | None = None
    """Functions available to the model."""
    tracing: Tracing | None = None
    """Tracing configuration; null disables it."""
    turn_detection: TurnDetection | None = None
    """Turn detection; null turns it off and the client triggers responses."""
    voice: str | None = None
    """The voice; fixed once the model has answered with audio."""


class ExpiresAfter(StrictModel):
    """How long the minted client secret lives, counted from its creation."""

    anchor: Literal["created_at"] = "created_at"
    """The only anchor OpenAI supports."""
    seconds: Annotated[int, Field(ge=10, le=7200), JSON_INTEGER] | None = None
    """10 to 7200 seconds; the policy's default TTL when absent, capped by its maximum."""


class ClientSecretOptions(StrictModel):
    """The beta request's `client_secret` object (plus, on a round trip, the old secret)."""

    expires_after: ExpiresAfter | None = None
    value: SkipJsonSchema[str | None] = None
    """A previous answer's secret, sent back with its session: dropped, never forwarded."""
    expires_at: SkipJsonSchema[int | None] = None


class SessionRequest(Session):
    """Body of `POST /v1/realtime/sessions`: a Session plus the secret's lifetime."""

    client_secret: ClientSecretOptions | None = None
    policy_decisions: SkipJsonSchema[list[JsonObject] | None] = None
    """A previous answer's decisions, sent back with its session: dropped."""
