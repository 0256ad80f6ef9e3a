"""GPT-Live's `POST /v1/live/sessions` body: a WebRTC Live session and its browser's SDP offer.

Every field of the openai SDK's `LiveCreateParams` and `MediaSessionConfigParam`
(`openai.types.live`), nested types included; delegation is in
`live_delegation`, the Responses backend's tools in `live_tools`, and
`tests/test_live_contract.py` fails if the SDK and these models drift apart.

Parsing is as strict as for the Realtime shapes: unknown fields, wrong JSON
types and values outside the ranges the SDK documents are refused (400 naming
the field's dotted path). `null` is accepted where the SDK types a field
`Optional`, and refused where it may only be left out (see `live_fields`).

The Live client events are listed here too, because the session's
`client.data_channel.allowed_client_events` is how an operator keeps an
untrusted browser from rewriting what the operator configured.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from service.contract.beta import StrictModel
from service.contract.live_delegation import (
    DecisionQuestion,
    LiveDelegation,
)
from service.contract.live_fields import (
    TEXT_OR_LIST,
    NonNegativeInt,
    Omittable,
    by_literal,
    tag_of,
)
from service.contract.parsing import param_of

LIVE_CLIENT_EVENTS: tuple[str, ...] = (
    "session.start",
    "session.update",
    "session.input_audio.append",
    "session.input_audio.mute",
    "session.input_audio.unmute",
    "session.output_audio.fixture.play",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "decision.create",
    "decision.item.create",
    "decision.item.delete",
    "response.item.create",
    "response.create",
    "session.close",
    "transport.dtmf.send",
)
"""Every client event type of the SDK's `ClientEventParam`, `ConnectClientEventParam`
(sideband: adds `transport.dtmf.send`) and `ForkClientEventParam` unions."""

LIVE_SESSION_CHANGING_EVENTS: tuple[str, ...] = (
    "session.start",
    "session.update",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "response.item.create",
    "response.create",
    "decision.item.create",
    "decision.item.delete",
    "decision.create",
)
"""Client events a browser must not send where the operator owns instructions or delegation.

- `session.start` configures a session, `session.update` rewrites the
  delegation (backend model, prompt, tools) and the triggers.
- `session.instructions.append` adds developer instructions that outlive
  compaction and reach every later backend delegation;
  `session.thinking.append` and `session.commentary.append` add context the
  model acts on (the SDK: "not a secrecy boundary"). Each would let a browser
  talk past the operator's instructions.
- `response.item.create` writes items (a user message, a tool result) straight
  into the operator's Responses backend, and `response.create` runs that
  backend, with the operator's tools and credentials, without the Live model
  having delegated anything.
- `decision.item.create` and `decision.item.delete` change the items every
  later decision reads, and `decision.create` runs the operator's questions.

Left out, as harmless to the operator: muting, unmuting and closing the
session; `session.input_audio.append` (audio, which the browser sends by
speaking anyway); `session.output_audio.fixture.play` (audio played back to the
browser itself, which is not conversation context); `transport.dtmf.send`
(sideband-only, for SIP calls).
"""


class CustomVoice(StrictModel):
    """A custom voice, by id."""

    id: str


class AudioOutput(StrictModel):
    """The voice of the Live model's speech; fixed at startup."""

    voice: Omittable[str | CustomVoice] = None
    """A built-in voice's name (`marin` by default) or a custom voice."""


class LiveAudio(StrictModel):
    """Startup audio settings; WebRTC negotiates the audio format itself."""

    output: Omittable[AudioOutput] = None


class ServerEventSelector(StrictModel):
    """A server event the browser may receive; Responses events are selected one level down."""

    # The rule below, in the OpenAPI document too (JSON Schema 2020-12), so that
    # clients and fuzzers generated from it know it.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "response.event"}}},
            "then": {"required": ["response_event"]},
            "else": {"not": {"required": ["response_event"]}},
        }
    )

    type: str
    response_event: Omittable[str] = None
    """The nested Responses event type: required with `response.event`, refused otherwise."""

    @model_validator(mode="after")
    def _response_event_with_response_events_only(self) -> ServerEventSelector:
        """The SDK: required when `type` is `response.event`, forbidden for other types."""
        if (self.type == "response.event") != (self.response_event is not None):
            raise ValueError("response_event is required with type 'response.event' only")
        return self


class DataChannelConfig(StrictModel):
    """Which events the untrusted browser may send and receive on its data channel.

    Omitting a list keeps the allow-all default; `[]` allows none. Trusted
    sideband connections are not restricted.
    """

    allowed_client_events: Omittable[
        Annotated[
            Annotated[Literal["all"], Tag("Text")] | Annotated[list[str], Tag("List")],
            TEXT_OR_LIST,
        ]
    ] = None
    """`all`, or client event types (see `LIVE_CLIENT_EVENTS`)."""
    allowed_server_events: Omittable[
        Annotated[
            Annotated[Literal["all"], Tag("Text")]
            | Annotated[list[ServerEventSelector], Tag("List")],
            TEXT_OR_LIST,
        ]
    ] = None


class ClientConfig(StrictModel):
    """What the browser attached to the WebRTC session may do; startup only."""

    data_channel: DataChannelConfig


class MessageText(StrictModel):
    """The text of a developer or user history message."""

    text: str
    type: Omittable[Literal["input_text"]] = None


class AssistantText(StrictModel):
    """The text of an assistant history message (`type` `text`, or absent)."""

    text: str
    type: Omittable[Literal["text"]] = None


class AssistantOutputText(StrictModel):
    """The text of an assistant history message, as Responses output text."""

    text: str
    type: Literal["output_text"]


AssistantPart: TypeAlias = Annotated[
    Annotated[AssistantText, Tag(tag_of(AssistantText))]
    | Annotated[AssistantOutputText, Tag(tag_of(AssistantOutputText))],
    by_literal(AssistantText, AssistantOutputText, default=AssistantText),
]

Status: TypeAlias = Literal["incomplete", "completed"]
"""Live uses the text as history either way, and does not resume an incomplete message."""


class DeveloperMessage(StrictModel):
    """A developer message of the startup history."""

    role: Literal["developer"]
    content: Annotated[list[MessageText], Field(min_length=1, max_length=1)]
    """Exactly one text part, as the SDK documents."""
    id: str | None = None
    status: Status | None = None
    type: Omittable[Literal["message"]] = None


class UserMessage(StrictModel):
    """A user message of the startup history."""

    role: Literal["user"]
    content: Annotated[list[MessageText], Field(min_length=1, max_length=1)]
    id: str | None = None
    status: Status | None = None
    type: Omittable[Literal["message"]] = None


class AssistantMessage(StrictModel):
    """An assistant message of the startup history."""

    role: Literal["assistant"]
    content: Annotated[list[AssistantPart], Field(min_length=1, max_length=1)]
    id: str | None = None
    status: Status | None = None
    type: Omittable[Literal["message"]] = None


InitialItem: TypeAlias = Annotated[
    Annotated[DeveloperMessage, Tag(tag_of(DeveloperMessage))]
    | Annotated[UserMessage, Tag(tag_of(UserMessage))]
    | Annotated[AssistantMessage, Tag(tag_of(AssistantMessage))],
    by_literal(DeveloperMessage, UserMessage, AssistantMessage, field="role"),
]
"""A text-only history message; all three share `type: message`, so `role` tells them apart."""


class TriggerDecisions(StrictModel):
    """Questions evaluated on the transcript and the session's shared Decision items."""

    questions: list[DecisionQuestion]


class DecisionTrigger(StrictModel):
    """Run Decisions questions on each transcript delta of one kind."""

    type: Literal["decisions"]
    event_type: Literal["session.input_transcript.delta", "session.output_transcript.delta"]
    decisions: TriggerDecisions


def _one_trigger_per_event_type(triggers: list[DecisionTrigger]) -> list[DecisionTrigger]:
    """The SDK: at most one Decisions trigger per transcript event type."""
    repeated = [
        kind for kind, count in Counter(t.event_type for t in triggers).items() if count > 1
    ]
    if repeated:
        raise ValueError(f"at most one trigger per event_type; {repeated[0]!r} has more")
    return triggers


Triggers: TypeAlias = Annotated[list[DecisionTrigger], AfterValidator(_one_trigger_per_event_type)]
"""A session's `triggers`: Decisions questions per transcript event type, one each at most."""

TRIGGERS: TypeAdapter[list[DecisionTrigger]] = TypeAdapter(Triggers)


def parse_triggers(data: object, source: str = "triggers") -> list[DecisionTrigger]:
    """Validate a `triggers` list read from an ops file, as strictly as a request.

    Raises ValueError naming each wrong field by its dotted path (e.g.
    `[0].decisions.questions[1].type`), never the questions' text, so a bad
    file fails at start-up with a message ops can act on.
    """
    try:
        return TRIGGERS.validate_python(data, strict=True)
    except ValidationError as exc:
        problems = [
            f"'{param_of(error['loc']) or '(the list)'}': {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(
            f"{source} is not a valid list of Live triggers: {'; '.join(problems[:5])}{more}"
        ) from None


class WakePolicy(StrictModel):
    """After an idle pause, microphone speech resumes inference."""

    type: Literal["speech"]
    vad_threshold: Omittable[Annotated[float, Field(ge=0.0, le=1.0)]] = None
    """Speech detection threshold, 0 to 1 inclusive (0.5 by default); higher needs more."""


class LiveSession(StrictModel):
    """`MediaSessionConfigParam`: the startup configuration of a Live media session.

    The model, instructions, voice and startup input cannot change later
    (`session.update` reaches delegation and triggers only).
    """

    model: Omittable[str] = None
    """`gpt-live-1`, `gpt-live-1.1`, ... (any name; the policy decides). Required by OpenAI;
    left out, the service fills POLICY_LIVE_DEFAULT_MODEL."""
    audio: Omittable[LiveAudio] = None
    client: Omittable[ClientConfig] = None
    delegation: LiveDelegation | None = None
    """Who handles delegated tasks; absent or null is the application."""
    idle_timeout_s: Omittable[NonNegativeInt] = None
    """Seconds of inactivity before inference pauses (speech wake policy); absent never."""
    input: Omittable[Annotated[list[InitialItem], Field(max_length=128)]] = None
    """Startup history: at most 128 text messages (and a rendered-token limit upstream)."""
    instructions: str | None = None
    """Frontend instructions (16,384 tokens at most upstream); absent or blank for defaults."""
    safety_identifier: str | None = None
    """A stable id of the end user, for OpenAI's abuse detection."""
    store: Omittable[bool] = None
    """Store the session for forking and recording download; false by default."""
    triggers: Omittable[Triggers] = None
    """Decisions questions run on each transcript delta (on the server's key): see
    POLICY_LIVE_TRIGGERS."""
    wake_policy: Omittable[WakePolicy] = None


class LiveTransport(StrictModel):
    """The WebRTC transport: the browser's SDP offer."""

    type: Literal["webrtc"]
    sdp: Annotated[str, Field(json_schema_extra={"pattern": "^v=0"})]
    """The offer; checked (`v=0` first, CALLS_MAX_SDP_BYTES) as `invalid_sdp` by the endpoint."""


class LiveCreateRequest(StrictModel):
    """`LiveCreateParams`: the body of `POST /v1/live/sessions`."""

    session: LiveSession
    transport: LiveTransport
