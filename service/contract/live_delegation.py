"""Who handles the tasks a GPT-Live session delegates: the application, Responses, or Decisions.

From the openai SDK's `MediaSessionConfigParam.delegation` union
(`ClientDelegationParam`, `DelegationResponses`, `DelegationDecisions`) and
their nested `ResponsesDelegationConfigParam`, `DecisionsDelegationConfigParam`
and `DecisionQuestionParam`.

The delegation carries the operator's backend prompt and tools (and MCP
credentials), so ops keep it in a server-side file: `parse_delegation` checks
that file's object when it loads, and says where it is wrong.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Tag, TypeAdapter, ValidationError

from service.contract.beta import JsonObject, StrictModel
from service.contract.live_fields import (
    TEXT_OR_LIST,
    NonNegativeInt,
    Omittable,
    by_literal,
    tag_of,
)
from service.contract.live_tools import BackendTool, BackendToolChoice
from service.contract.parsing import param_of


class InputText(StrictModel):
    """Text given to a Decision question."""

    type: Literal["input_text"]
    text: str


class InputImage(StrictModel):
    """An image given to a Decision question: a base64 data URL or an HTTP(S) URL."""

    type: Literal["input_image"]
    image_url: str
    detail: Literal["low", "high", "auto", "original"] | None = None
    """`auto` when absent."""


class InputJson(StrictModel):
    """JSON given to a Decision question: one object or a list of them."""

    type: Literal["input_json"]
    data: JsonObject | list[JsonObject]


InstructionsPart: TypeAlias = Annotated[
    Annotated[InputText, Tag(tag_of(InputText))]
    | Annotated[InputImage, Tag(tag_of(InputImage))]
    | Annotated[InputJson, Tag(tag_of(InputJson))],
    by_literal(InputText, InputImage, InputJson),
]
Instructions: TypeAlias = Annotated[
    Annotated[str, Tag("Text")] | Annotated[list[InstructionsPart], Tag("List")], TEXT_OR_LIST
]
"""A question's instructions: plain text, or text, image and JSON parts."""


class ChoiceOption(StrictModel):
    """One answer a `choice` question may give."""

    value: str | bool
    description: Omittable[str] = None


class ChoiceQuestion(StrictModel):
    """Pick one of `choices`."""

    type: Literal["choice"]
    instructions: Instructions
    choices: list[ChoiceOption]
    name: Omittable[str] = None


class PredicateQuestion(StrictModel):
    """Answer true or false."""

    type: Literal["predicate"]
    instructions: Instructions
    name: Omittable[str] = None


class ScoreLevel(StrictModel):
    """One level of a `score` question's scale."""

    label: str
    description: Omittable[str] = None


class ScoreQuestion(StrictModel):
    """Place the conversation on a scale of `levels`."""

    type: Literal["score"]
    instructions: Instructions
    levels: list[ScoreLevel]
    name: Omittable[str] = None


DecisionQuestion: TypeAlias = Annotated[
    Annotated[ChoiceQuestion, Tag(tag_of(ChoiceQuestion))]
    | Annotated[PredicateQuestion, Tag(tag_of(PredicateQuestion))]
    | Annotated[ScoreQuestion, Tag(tag_of(ScoreQuestion))],
    by_literal(ChoiceQuestion, PredicateQuestion, ScoreQuestion),
]
"""A native Decision API question, used by delegation and by transcript triggers."""


class Reasoning(StrictModel):
    """Reasoning settings for each delegated Responses request."""

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    """Which values work depends on the backend model."""
    summary: Literal["concise", "detailed", "auto"] | None = None


class Text(StrictModel):
    """Text settings for each delegated Responses request (not the Live model's speech)."""

    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesDelegationConfig(StrictModel):
    """The backend model, prompt and tools for tasks delegated to Responses.

    `instructions` is the backend prompt, separate from the Live (frontend)
    instructions: https://developers.openai.com/api/docs/guides/live-delegation
    """

    model: str
    instructions: str | None = None
    max_output_tokens: NonNegativeInt | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    service_tier: (
        Literal["auto", "default", "fast_tier_temp_pilot", "flex", "priority", "ultrafast"] | None
    ) = None
    text: Text | None = None
    tool_choice: Omittable[BackendToolChoice] = None
    tools: Omittable[list[BackendTool]] = None


class DecisionsDelegationConfig(StrictModel):
    """The Decisions model and the questions it evaluates together, in order."""

    model: str
    questions: list[DecisionQuestion]


class ClientDelegation(StrictModel):
    """Delegated tasks go to the application, as delegation events."""

    type: Literal["client"]
    acknowledgement_delay_ms: Omittable[NonNegativeInt] = None
    """Milliseconds before a spoken acknowledgement is requested; 0 (at once) by default."""


class ResponsesDelegation(StrictModel):
    """Delegated tasks go to a Responses model that the Live session runs."""

    type: Literal["responses"]
    responses: ResponsesDelegationConfig
    acknowledgement_delay_ms: Omittable[NonNegativeInt] = None
    """Milliseconds before a spoken acknowledgement is requested; 0 (at once) by default."""


class DecisionsDelegation(StrictModel):
    """Delegated tasks go to the Decisions API."""

    type: Literal["decisions"]
    decisions: DecisionsDelegationConfig
    acknowledgement_delay_ms: Omittable[NonNegativeInt] = None
    """Milliseconds before a spoken acknowledgement is requested; 400 by default."""


Delegation: TypeAlias = ClientDelegation | ResponsesDelegation | DecisionsDelegation
"""A validated delegation, whichever its owner."""

LiveDelegation: TypeAlias = Annotated[
    Annotated[ClientDelegation, Tag(tag_of(ClientDelegation))]
    | Annotated[ResponsesDelegation, Tag(tag_of(ResponsesDelegation))]
    | Annotated[DecisionsDelegation, Tag(tag_of(DecisionsDelegation))],
    by_literal(ClientDelegation, ResponsesDelegation, DecisionsDelegation),
]
"""`session.delegation` (when not null, which selects the application)."""

DELEGATION: TypeAdapter[Delegation] = TypeAdapter(LiveDelegation)


def parse_delegation(data: object, source: str = "delegation") -> Delegation:
    """Validate a delegation object read from an ops file, as strictly as a request.

    Raises ValueError naming each wrong field by its dotted path (e.g.
    `responses.tools[0].name`) so that a bad file fails at start-up with a
    message ops can act on; `source` (the file's name) opens the message.
    """
    try:
        return DELEGATION.validate_python(data, strict=True)
    except ValidationError as exc:
        problems = [
            f"'{param_of(error['loc']) or '(the object)'}': {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(
            f"{source} is not a valid Live delegation: {'; '.join(problems[:5])}{more}"
        ) from None
