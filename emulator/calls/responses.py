"""A Realtime response as OpenAI streams it: pure functions building its server events.

A response is `response.created` (status `in_progress`), then for each output
item `response.output_item.added` and `conversation.item.added` (left out when
the response is out of band: `conversation: "none"`), its content
(`response.content_part.*` and the transcript or text, or a function call's
arguments), `response.output_item.done` and `conversation.item.done`, and last
`response.done` with the usage. Over WebRTC the audio itself goes on the media
track, framed by `output_audio_buffer.started` / `.stopped`, never as deltas.

What `response.create` asks for (`RealtimeResponseCreateParams`) overrides the
session for this response only: `audio.output.voice`, `output_modalities`,
`max_output_tokens`, `metadata`; its own `tools` and `tool_choice` decide
whether it calls a function (the first function tool, by name), unless it
answers a function's output. Each output is the emulator's fixed
`TRANSCRIPT` or a function call with arguments `{}`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.calls import realtime
from emulator.calls.events import TRANSCRIPT, Event, new_id, server_event

DEFAULT_INPUT_TOKENS = 12
DEFAULT_OUTPUT_TOKENS = 24


@dataclass(slots=True)
class Response:
    """One response: its resource (`RealtimeResponse`) and what it outputs."""

    resource: dict[str, Any]
    in_conversation: bool
    function: str | None = None
    """The function it calls, or None for a spoken (or written) answer."""
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The response's id (`resp_…`)."""
        return str(self.resource["id"])

    @property
    def audio(self) -> bool:
        """Whether it speaks (its output modalities include audio)."""
        return "audio" in self.resource["output_modalities"]


def _function_named(tools: object) -> str | None:
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if isinstance(tool, Mapping) and tool.get("type") == "function":
            name = tool.get("name")
            if isinstance(name, str):
                return name
    return None


def planned(
    session: Mapping[str, Any],
    params: Mapping[str, Any],
    function: str | None = None,
    *,
    answering_tool_output: bool = False,
) -> Response:
    """The response `response.create` asks for, the session filling in what it leaves out.

    `function` forces a call to that function (the emulator's control), whatever the tools.
    """
    audio = params.get("audio")
    output = audio.get("output") if isinstance(audio, Mapping) else None
    voice = output.get("voice") if isinstance(output, Mapping) else None
    modalities = params.get("output_modalities", session.get("output_modalities", ["audio"]))
    cap = params.get("max_output_tokens", session.get("max_output_tokens", "inf"))
    in_conversation = params.get("conversation", "auto") != "none"
    resource: dict[str, Any] = {
        "object": "realtime.response",
        "id": new_id("resp"),
        "status": "in_progress",
        "status_details": None,
        "conversation_id": new_id("conv") if in_conversation else None,
        "output": [],
        "output_modalities": copy.deepcopy(modalities),
        "audio": {
            "output": {
                "voice": voice if isinstance(voice, str) else realtime.voice_of(session),
                "format": {"type": "audio/pcm", "rate": 24000},
            }
        },
        "max_output_tokens": cap,
        "metadata": copy.deepcopy(params.get("metadata")),
        "usage": None,
    }
    if function is None:
        function = _chosen_function(params, answering_tool_output=answering_tool_output)
    return Response(resource, in_conversation, function)


def _chosen_function(params: Mapping[str, Any], *, answering_tool_output: bool) -> str | None:
    """The function a response calls: one `tool_choice` forces, else the first of its own tools.

    Only the response's own `tools` count, not the session's, and a response that
    follows a function's output answers it: a client (the Agents SDK) that sends
    `response.create` after each `function_call_output` is not led round a loop.
    """
    choice = params.get("tool_choice", "auto")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        name = choice.get("name")
        return name if isinstance(name, str) else None
    if choice == "none" or answering_tool_output:
        return None
    return _function_named(params.get("tools"))


def _snapshot(response: Response) -> dict[str, Any]:
    """The resource as an event shows it: unset fields left out (OpenAI's schema has no nulls)."""
    return {k: copy.deepcopy(v) for k, v in response.resource.items() if v is not None}


def started(response: Response, previous_item_id: str | None) -> list[Event]:
    """`response.created` and the output item's announcement, up to its content's start."""
    emitted = [server_event("response.created", response=_snapshot(response))]
    item: dict[str, Any]
    if response.function is not None:
        item = {
            "type": "function_call",
            "name": response.function,
            "call_id": new_id("call"),
            "arguments": "",
        }
    else:
        item = {"type": "message", "role": "assistant", "content": []}
    item = {"id": new_id("item"), "object": "realtime.item", "status": "in_progress", **item}
    response.items.append(item)
    ids = {"response_id": response.id, "output_index": 0}
    emitted.append(server_event("response.output_item.added", item=copy.deepcopy(item), **ids))
    if response.in_conversation:
        emitted.append(
            server_event(
                "conversation.item.added",
                item=copy.deepcopy(item),
                previous_item_id=previous_item_id,
            )
        )
    if response.function is None:
        part = {"type": "audio", "transcript": ""} if response.audio else {"type": "text"}
        emitted.append(
            server_event(
                "response.content_part.added",
                item_id=item["id"],
                content_index=0,
                part=part,
                **ids,
            )
        )
        if response.audio:
            emitted.append(server_event("output_audio_buffer.started", response_id=response.id))
    return emitted


def _content(response: Response, item: dict[str, Any]) -> list[Event]:
    """The item's content streamed, and the item completed with it."""
    ids = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
    if response.function is not None:
        item["arguments"] = "{}"
        fields = {**ids, "call_id": item["call_id"]}
        return [
            server_event("response.function_call_arguments.delta", delta="{}", **fields),
            server_event(
                "response.function_call_arguments.done",
                arguments="{}",
                name=response.function,
                **fields,
            ),
        ]
    if response.audio:
        item["content"] = [{"type": "output_audio", "transcript": TRANSCRIPT}]
        part = {"type": "audio", "transcript": TRANSCRIPT}
        streamed = [
            server_event(
                "response.output_audio_transcript.delta", content_index=0, delta=TRANSCRIPT, **ids
            ),
            server_event(
                "response.output_audio_transcript.done",
                content_index=0,
                transcript=TRANSCRIPT,
                **ids,
            ),
        ]
    else:
        item["content"] = [{"type": "output_text", "text": TRANSCRIPT}]
        part = {"type": "text", "text": TRANSCRIPT}
        streamed = [
            server_event("response.output_text.delta", content_index=0, delta=TRANSCRIPT, **ids),
            server_event("response.output_text.done", content_index=0, text=TRANSCRIPT, **ids),
        ]
    done = server_event("response.content_part.done", content_index=0, part=part, **ids)
    return [*streamed, done]


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """`RealtimeResponse.usage`: a quarter of each side counted as text, the rest as audio."""
    input_text = input_tokens // 4
    output_text = output_tokens // 4
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_tokens - input_text,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {
            "text_tokens": output_text,
            "audio_tokens": output_tokens - output_text,
        },
    }


def finished(
    response: Response,
    *,
    cancelled: bool = False,
    input_tokens: int = DEFAULT_INPUT_TOKENS,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> list[Event]:
    """The rest of the response: its content (unless cancelled), the items done, `response.done`.

    A cancelled response ends at once: its item `incomplete`, status `cancelled`
    (`client_cancelled`), as `response.cancel` promises.
    """
    emitted: list[Event] = []
    cap = response.resource["max_output_tokens"]
    if isinstance(cap, int) and not isinstance(cap, bool):
        output_tokens = min(output_tokens, cap)
    for item in response.items:
        if not cancelled:
            emitted.extend(_content(response, item))
        item["status"] = "incomplete" if cancelled else "completed"
        emitted.append(
            server_event(
                "response.output_item.done",
                item=copy.deepcopy(item),
                response_id=response.id,
                output_index=0,
            )
        )
        if response.in_conversation:
            emitted.append(server_event("conversation.item.done", item=copy.deepcopy(item)))
    response.resource.update(
        status="cancelled" if cancelled else "completed",
        status_details={"type": "cancelled", "reason": "client_cancelled"} if cancelled else None,
        output=copy.deepcopy(response.items),
        usage=usage(input_tokens, output_tokens),
    )
    emitted.append(server_event("response.done", response=_snapshot(response)))
    if response.audio and response.function is None:
        emitted.append(server_event("output_audio_buffer.stopped", response_id=response.id))
    return emitted
