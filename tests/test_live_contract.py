"""GPT-Live's `POST /v1/live/sessions` bodies, field for field as the openai SDK types them.

The drift test walks the SDK's TypedDicts from `LiveCreateParams` down and
our models alongside, so a field added on either side (or a change of
required-ness or nullability) fails here before it reaches a caller.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, NotRequired, Required, get_args, get_origin

import pytest
from openai.types.live import client_event_param, connect_client_event_param
from openai.types.live import fork_client_event_param as fork_event_param
from openai.types.live.decision_question_param import DecisionQuestionParam
from openai.types.live.live_create_params import LiveCreateParams, Transport
from pydantic import BaseModel
from typing_extensions import TypedDict, is_typeddict

from service.contract import (
    LIVE_CLIENT_EVENTS,
    LIVE_SESSION_CHANGING_EVENTS,
    LiveCreateRequest,
    LiveSession,
    LiveTransport,
    parse,
    parse_delegation,
)
from service.contract.live_delegation import (
    ClientDelegation,
    DecisionsDelegation,
    ResponsesDelegation,
)
from service.core.errors import InvalidRequest

DISCRIMINATING_KEYS = ("type", "role")
"""Keys whose literal tells a union's variants apart (history messages share `type`)."""


def _sdk_typeddicts(annotation: Any) -> list[Any]:
    """The TypedDicts an SDK annotation can hold, through Required, Optional, unions and lists.

    `typing_extensions.is_typeddict`, because the SDK's TypedDicts are
    typing_extensions' own class on Python 3.11, which `typing` does not know.
    """
    if is_typeddict(annotation):
        return [annotation]
    if get_origin(annotation) is Literal:
        return []
    return [found for arg in get_args(annotation) for found in _sdk_typeddicts(arg)]


def _our_models(annotation: Any) -> list[type[BaseModel]]:
    """The models one of our annotations can hold, through Annotated, unions and lists."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is Literal:
        return []
    return [found for arg in get_args(annotation) for found in _our_models(arg)]


def _literals(annotation: Any) -> set[Any]:
    """The Literal values inside an annotation (either side)."""
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    return {value for arg in get_args(annotation) for value in _literals(arg)}


def _nullable(annotation: Any) -> bool:
    """Whether `None` is one of the annotation's top-level alternatives."""
    if annotation is type(None):
        return True
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated, Required, NotRequired):
        return any(_nullable(arg) for arg in get_args(annotation))
    return False


def _pair_variants(
    sdk_variants: list[Any], ours: list[type[BaseModel]]
) -> list[tuple[Any, type[BaseModel] | None]]:
    """Match a union's SDK variants to our models by the literal that tells them apart."""
    if len(sdk_variants) == 1 and len(ours) == 1:
        return [(sdk_variants[0], ours[0])]
    for key in DISCRIMINATING_KEYS:
        values = [_literals(typing.get_type_hints(v).get(key)) for v in sdk_variants]
        if all(values) and len(set().union(*values)) == sum(len(v) for v in values):
            break
    else:
        return [(variant, None) for variant in sdk_variants]
    pairs: list[tuple[Any, type[BaseModel] | None]] = []
    for variant, literals in zip(sdk_variants, values, strict=True):
        matching = [
            model
            for model in ours
            if key in model.model_fields
            and literals <= _literals(model.model_fields[key].annotation)
        ]
        pairs.append((variant, matching[0] if len(matching) == 1 else None))
    return pairs


FILLED_BY_POLICY = {"session": {"model"}}
"""Required by OpenAI, optional here: the service fills POLICY_LIVE_DEFAULT_MODEL (as it
fills POLICY_DEFAULT_MODEL for Realtime), so the upstream body always has it."""


def drift(
    sdk: Any, ours: type[BaseModel], path: str = "", seen: set[Any] | None = None
) -> list[str]:
    """Every difference between an SDK TypedDict and our model, recursively, by dotted path."""
    seen = set() if seen is None else seen
    if (sdk, ours) in seen:
        return []
    seen.add((sdk, ours))
    hints = typing.get_type_hints(sdk, include_extras=True)
    fields = ours.model_fields
    where = path or "(body)"
    problems = [f"{where}: SDK field {name!r} is not modelled" for name in hints.keys() - fields]
    problems += [f"{where}: {name!r} is not in the SDK" for name in fields.keys() - hints]
    # From the hints, not `__required_keys__`: the SDK's annotations are strings
    # (`from __future__ import annotations`), unread when the class was made.
    sdk_required = {name for name, hint in hints.items() if get_origin(hint) is Required}
    sdk_required -= FILLED_BY_POLICY.get(path, set())
    required = {name for name, field in fields.items() if field.is_required()}
    if required != sdk_required:
        problems.append(f"{where}: required {sorted(required)} != SDK {sorted(sdk_required)}")
    for name in hints.keys() & fields.keys():
        here = f"{path}.{name}" if path else name
        if _nullable(hints[name]) != _nullable(fields[name].annotation):
            problems.append(f"{here}: null accepted differs from the SDK's Optional")
        sdk_variants = _sdk_typeddicts(hints[name])
        our_variants = _our_models(fields[name].annotation)
        if not sdk_variants:
            problems += [
                f"{here}: {model.__name__} where the SDK has no object" for model in our_variants
            ]
            continue
        for variant, model in _pair_variants(sdk_variants, our_variants):
            if model is None:
                problems.append(f"{here}: no model for SDK {variant.__name__}")
            else:
                problems += drift(variant, model, here, seen)
    return problems


def _sdk_reached(sdk: Any, reached: set[str] | None = None) -> set[str]:
    """The names of every SDK TypedDict reachable from `sdk`."""
    reached = set() if reached is None else reached
    if sdk.__name__ not in reached:
        reached.add(sdk.__name__)
        for hint in typing.get_type_hints(sdk, include_extras=True).values():
            for variant in _sdk_typeddicts(hint):
                _sdk_reached(variant, reached)
    return reached


class NewerTransport(Transport, total=False):
    """The SDK's transport with a field we do not have."""

    ice_servers: list[str]


class WiderTransport(LiveTransport):
    """Our transport with a field the SDK does not have."""

    ice_servers: list[str] | None = None


class Teleport(TypedDict, total=False):
    """A delegation owner we do not model."""

    type: Required[Literal["teleport"]]


class TeleportSession(TypedDict, total=False):
    """A session whose delegation may be a Teleport."""

    model: Required[str]
    delegation: Teleport | None


class TeleportParams(TypedDict, total=False):
    """A body holding a TeleportSession."""

    session: Required[TeleportSession]


class TeleportBody(BaseModel):
    """Our side of TeleportParams."""

    session: LiveSession


class TestSdkDrift:
    """Our models against `openai.types.live`'s TypedDicts."""

    def test_models_match_the_sdk(self) -> None:
        """Each TypedDict under LiveCreateParams has a model: same fields, required and nullable."""
        assert drift(LiveCreateParams, LiveCreateRequest) == []

    def test_walk_compares_every_sdk_type(self) -> None:
        """Every TypedDict reachable from LiveCreateParams, leaves included, is compared."""
        reached = _sdk_reached(LiveCreateParams)
        compared: set[Any] = set()
        drift(LiveCreateParams, LiveCreateRequest, seen=compared)
        assert {sdk.__name__ for sdk, _ in compared} == reached
        assert {
            "CustomVoiceParam",
            "ServerEventSelectorParam",
            "AssistantContentOutputText",
            "ToolShellEnvironmentContainerAutoSkillInlineSource",
            "ToolChoiceLiveAllowedToolsChoiceParamToolApplyPatch",
            "ToolMcpRequireApprovalLiveMCPRequireApprovalFilterParamNever",
            "ScoreLevel",
            "DecisionChoiceOptionParam",
            "WakePolicy",
        } <= reached

    def test_a_field_only_the_sdk_has_is_drift(self) -> None:
        """A field added to the SDK and not to us is reported."""
        assert drift(NewerTransport, LiveTransport) == [
            "(body): SDK field 'ice_servers' is not modelled"
        ]

    def test_a_field_only_we_have_is_drift(self) -> None:
        """A field we accept that the SDK does not know is reported."""
        assert drift(Transport, WiderTransport) == ["(body): 'ice_servers' is not in the SDK"]

    def test_a_nested_variant_we_lack_is_drift(self) -> None:
        """An SDK union variant with a `type` none of our models has is reported."""
        problems = drift(TeleportParams, TeleportBody)
        assert "session.delegation: no model for SDK Teleport" in problems

    def test_client_events_are_the_sdk_s(self) -> None:
        """LIVE_CLIENT_EVENTS is every `type` of the SDK's client, sideband and fork events."""
        unions = (
            client_event_param.ClientEventParam,
            connect_client_event_param.ConnectClientEventParam,
            fork_event_param.ForkClientEventParam,
        )
        sdk = {
            kind
            for union in unions
            for event in get_args(union)
            for kind in _literals(typing.get_type_hints(event, include_extras=True)["type"])
        }
        assert set(LIVE_CLIENT_EVENTS) == sdk
        assert len(LIVE_CLIENT_EVENTS) == len(sdk)

    def test_session_changing_events_are_client_events(self) -> None:
        """Session-changing events are known client events; the harmless ones are not among them."""
        assert set(LIVE_SESSION_CHANGING_EVENTS) <= set(LIVE_CLIENT_EVENTS)
        harmless = {"session.input_audio.mute", "session.input_audio.unmute", "session.close"}
        assert not harmless & set(LIVE_SESSION_CHANGING_EVENTS)
        assert {"session.update", "session.instructions.append"} <= set(
            LIVE_SESSION_CHANGING_EVENTS
        )


RESPONSES_DELEGATION: dict[str, Any] = {
    "type": "responses",
    "acknowledgement_delay_ms": 250,
    "responses": {
        "model": "gpt-5.2",
        "instructions": "Look orders up; never refund above 50 EUR.",
        "max_output_tokens": 2048,
        "parallel_tool_calls": False,
        "reasoning": {"effort": "low", "summary": "auto"},
        "service_tier": "priority",
        "text": {"verbosity": "low"},
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [
                {"type": "function", "name": "lookup_order"},
                {"type": "mcp", "server_label": "crm", "name": "find"},
            ],
        },
        "tools": [
            {
                "type": "function",
                "name": "lookup_order",
                "description": "By id.",
                "parameters": {"type": "object"},
                "strict": True,
            },
            {"type": "web_search"},
            {
                "type": "mcp",
                "server_label": "crm",
                "server_url": "https://crm.example/mcp",
                "authorization": "tok",
                "headers": {"X-Key": "k"},
                "allowed_tools": {"tool_names": ["find"], "read_only": True},
                "require_approval": {"never": {"tool_names": ["find"]}},
                "allowed_callers": ["direct"],
                "defer_loading": False,
            },
            {
                "type": "shell",
                "environment": {
                    "type": "container_auto",
                    "memory_limit": "4g",
                    "network_policy": {"type": "allowlist", "allowed_domains": ["example.com"]},
                    "skills": [
                        {"type": "skill_reference", "skill_id": "sk_1", "version": "latest"},
                        {
                            "type": "inline",
                            "name": "n",
                            "description": "d",
                            "source": {
                                "type": "base64",
                                "media_type": "application/zip",
                                "data": "UEsDBA==",
                            },
                        },
                    ],
                },
            },
            {
                "type": "shell",
                "environment": {
                    "type": "local",
                    "skills": [{"name": "n", "description": "d", "path": "/skills/n"}],
                },
            },
        ],
    },
}
PLANS: dict[str, object] = {"plans": ["basic", "gold"], "caller": {"tier": 2}}
QUESTION: DecisionQuestionParam = {
    "type": "choice",
    "name": "intent",
    "instructions": [
        {"type": "input_text", "text": "What does the caller want?"},
        {"type": "input_json", "data": PLANS},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
    ],
    "choices": [{"value": "refund", "description": "Money back"}, {"value": False}],
}
DECISIONS_DELEGATION: dict[str, Any] = {
    "type": "decisions",
    "acknowledgement_delay_ms": 400,
    "decisions": {
        "model": "gpt-decide-1",
        "questions": [
            QUESTION,
            {"type": "predicate", "instructions": "Is the caller upset?"},
            {
                "type": "score",
                "instructions": "How urgent?",
                "levels": [{"label": "low"}, {"label": "high", "description": "Now."}],
            },
        ],
    },
}
FULL_BODY: LiveCreateParams = {
    "session": {
        "model": "gpt-live-1",
        "audio": {"output": {"voice": "marin"}},
        "client": {
            "data_channel": {
                "allowed_client_events": ["session.input_audio.mute", "session.close"],
                "allowed_server_events": [
                    {"type": "session.output_transcript.delta"},
                    {"type": "response.event", "response_event": "response.output_text.delta"},
                ],
            }
        },
        "delegation": {"type": "client", "acknowledgement_delay_ms": 0},
        "idle_timeout_s": 120,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "The caller is a gold member."}],
            },
            {"role": "user", "content": [{"text": "Hi"}], "id": "msg_1", "status": "completed"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
            {"role": "assistant", "content": [{"text": "How can I help?"}], "status": "incomplete"},
        ],
        "instructions": "You are Acme's phone agent.",
        "safety_identifier": "user-4711",
        "store": True,
        "triggers": [
            {
                "type": "decisions",
                "event_type": "session.input_transcript.delta",
                "decisions": {"questions": [QUESTION]},
            }
        ],
        "wake_policy": {"type": "speech", "vad_threshold": 0.6},
    },
    "transport": {"type": "webrtc", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"},
}
"""Every field of LiveCreateParams set; typed as the SDK's TypedDict so mypy checks its shape."""


def _body(**session: Any) -> dict[str, Any]:
    """A minimal body with `session` fields added."""
    return {
        "session": {"model": "gpt-live-1", **session},
        "transport": {"type": "webrtc", "sdp": "v=0"},
    }


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode()


class TestRoundTrips:
    """Bodies shaped as the SDK types them are accepted, field for field."""

    def test_a_full_body_validates(self) -> None:
        """A body setting every field of session and transport is accepted, every field kept."""
        request = parse(LiveCreateRequest, _encode(FULL_BODY))
        assert request.session.model_fields_set == set(LiveSession.model_fields)
        assert request.model_dump(exclude_none=True) == FULL_BODY

    @pytest.mark.parametrize(
        ("delegation", "model"),
        [
            ({"type": "client"}, ClientDelegation),
            (RESPONSES_DELEGATION, ResponsesDelegation),
            (DECISIONS_DELEGATION, DecisionsDelegation),
        ],
        ids=["client", "responses", "decisions"],
    )
    def test_each_delegation_validates(
        self, delegation: dict[str, Any], model: type[BaseModel]
    ) -> None:
        """Each delegation owner's SDK-shaped object is accepted as its own variant, unchanged."""
        request = parse(LiveCreateRequest, _encode(_body(delegation=delegation)))
        assert isinstance(request.session.delegation, model)
        assert request.session.delegation.model_dump(exclude_none=True) == delegation

    def test_null_is_accepted_where_the_sdk_says_optional(self) -> None:
        """`delegation`, `instructions` and `safety_identifier` may be null (SDK: Optional)."""
        body = _body(delegation=None, instructions=None, safety_identifier=None)
        assert parse(LiveCreateRequest, _encode(body)).session.delegation is None

    def test_a_custom_voice_validates(self) -> None:
        """A custom voice is an object holding its id."""
        body = _body(audio={"output": {"voice": {"id": "voice_123"}}})
        assert parse(LiveCreateRequest, _encode(body)).model_dump(exclude_none=True) == body


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a body: set the dotted `path` to `value`."""

    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            body = body.setdefault(part, {})
        body[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    """A change to a body: remove the dotted `path`."""

    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            body = body[part]
        del body[last]

    return change


USER = {"role": "user", "content": [{"text": "hi"}]}
TRIGGER = {
    "type": "decisions",
    "event_type": "session.output_transcript.delta",
    "decisions": {"questions": []},
}
REFUSALS: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown top-level field", _set("stream", True), "stream", "unknown_parameter"),
    (
        "unknown nested field",
        _set("session.audio.output.speed", 1.2),
        "session.audio.output.speed",
        "unknown_parameter",
    ),
    (
        "unknown tool field",
        _set(
            "session.delegation",
            {
                "type": "responses",
                "responses": {"model": "m", "tools": [{"type": "web_search", "color": "red"}]},
            },
        ),
        "session.delegation.responses.tools[0].color",
        "unknown_parameter",
    ),
    ("model not a string", _set("session.model", 1), "session.model", "invalid_type"),
    ("store not a boolean", _set("session.store", "yes"), "session.store", "invalid_type"),
    ("store null", _set("session.store", None), "session.store", "invalid_type"),
    (
        "idle timeout as a string",
        _set("session.idle_timeout_s", "60"),
        "session.idle_timeout_s",
        "invalid_type",
    ),
    ("input not a list", _set("session.input", USER), "session.input", "invalid_type"),
    (
        "vad threshold above 1",
        _set("session.wake_policy", {"type": "speech", "vad_threshold": 1.5}),
        "session.wake_policy.vad_threshold",
        "invalid_value",
    ),
    (
        "negative idle timeout",
        _set("session.idle_timeout_s", -1),
        "session.idle_timeout_s",
        "invalid_value",
    ),
    (
        "negative acknowledgement delay",
        _set("session.delegation", {"type": "client", "acknowledgement_delay_ms": -5}),
        "session.delegation.acknowledgement_delay_ms",
        "invalid_value",
    ),
    ("129 input items", _set("session.input", [USER] * 129), "session.input", "invalid_value"),
    (
        "two content parts",
        _set("session.input", [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]),
        "session.input[0].content",
        "invalid_value",
    ),
    (
        "unknown role",
        _set("session.input", [{"role": "system", "content": [{"text": "a"}]}]),
        "session.input[0]",
        "invalid_value",
    ),
    ("websocket transport", _set("transport.type", "websocket"), "transport.type", "invalid_value"),
    (
        "unknown delegation owner",
        _set("session.delegation", {"type": "human"}),
        "session.delegation",
        "invalid_value",
    ),
    (
        "two triggers for one event type",
        _set("session.triggers", [TRIGGER, TRIGGER]),
        "session.triggers",
        "invalid_value",
    ),
    (
        "responses event without its selector",
        _set(
            "session.client",
            {"data_channel": {"allowed_server_events": [{"type": "response.event"}]}},
        ),
        "session.client.data_channel.allowed_server_events[0]",
        "invalid_value",
    ),
    (
        "allowed client events neither all nor a list",
        _set("session.client", {"data_channel": {"allowed_client_events": "none"}}),
        "session.client.data_channel.allowed_client_events",
        "invalid_value",
    ),
    ("missing sdp", _drop("transport.sdp"), "transport.sdp", "missing_required_parameter"),
]


class TestRefusals:
    """What the SDK would not type is a 400 naming the field by its dotted path."""

    @pytest.mark.parametrize(
        ("change", "param", "code"),
        [refusal[1:] for refusal in REFUSALS],
        ids=[refusal[0] for refusal in REFUSALS],
    )
    def test_refused_with_param_and_code(
        self, change: Callable[[dict[str, Any]], None], param: str, code: str
    ) -> None:
        """The body is refused, naming the offending field and the kind of problem."""
        body = _body()
        change(body)
        with pytest.raises(InvalidRequest) as refused:
            parse(LiveCreateRequest, _encode(body))
        assert (refused.value.param, refused.value.code) == (param, code)

    def test_the_full_body_minus_nothing_is_not_refused(self) -> None:
        """The refusals above are each one change away from an accepted body."""
        assert parse(LiveCreateRequest, _encode(_body())).session.model == "gpt-live-1"


class TestParseDelegation:
    """Ops' delegation file, checked when it loads."""

    def test_a_good_delegation_is_returned_validated(self) -> None:
        """A Responses delegation object becomes its model, nothing dropped."""
        delegation = parse_delegation(copy.deepcopy(RESPONSES_DELEGATION))
        assert isinstance(delegation, ResponsesDelegation)
        assert delegation.responses.model == "gpt-5.2"

    def test_a_bad_delegation_names_the_path(self) -> None:
        """Each wrong field is named by its dotted path, after the file's name."""
        bad = copy.deepcopy(RESPONSES_DELEGATION)
        del bad["responses"]["tools"][0]["name"]
        bad["responses"]["reasoning"]["effort"] = "maximal"
        with pytest.raises(
            ValueError, match=r"^delegation\.json is not a valid Live delegation"
        ) as refused:
            parse_delegation(bad, source="delegation.json")
        assert "'responses.tools[0].name': Field required" in str(refused.value)
        assert "'responses.reasoning.effort'" in str(refused.value)

    def test_an_unknown_owner_is_refused(self) -> None:
        """A delegation whose `type` is not client, responses or decisions says which are."""
        with pytest.raises(
            ValueError, match="'type' must be one of 'client', 'responses', 'decisions'"
        ):
            parse_delegation({"type": "human"})

    def test_a_non_object_is_refused(self) -> None:
        """A file holding something other than an object is refused, not crashed on."""
        with pytest.raises(ValueError, match="not a valid Live delegation"):
            parse_delegation(["client"])
