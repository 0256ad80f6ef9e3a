"""A Realtime call's conversation: its items, its one active response, and the client events.

Every Realtime client event gets the server events OpenAI sends for it, or an
`error` (`realtime.error`: `invalid_request_error`, its `event_id` echoed) and
no change:

- `conversation.item.create`: `conversation.item.added` then `conversation.item.done`,
  the item with its id (`item_…` unless the client chose one), `object`, `status`;
- `conversation.item.delete`: `conversation.item.deleted`;
  `conversation.item.retrieve`: `conversation.item.retrieved`;
- `response.create`: a whole response (`responses`), or `error` while one is
  in progress (`conversation_already_has_active_response`);
- `response.cancel`: the active response ends, `response.done` with status
  `cancelled`; with none (or another `response_id`) an `error`;
- `input_audio_buffer.append` / `.commit` / `.clear`, `output_audio_buffer.clear`;
- anything else: `error` with `param: "type"`.

`session.update` is the call's (`BaseCall`), checked by `realtime.session_update_refusal`.
A response normally runs to its end at once; `hold` (the emulator's controls: a
held `/response`, `client_event?hold=true`, or the call's `hold_responses`) leaves
it in progress, so that a `response.cancel` ends it (`response.done`, `cancelled`);
one from a browser's real data channel is spoken first (`BaseCall.speak_s`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from emulator.calls import realtime, responses
from emulator.calls.events import Event, new_id, server_event, shown
from emulator.calls.responses import Response

ITEMS_KEPT = 1024
CLIENT_EVENTS = frozenset(
    {
        "session.update",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
    }
)
"""`RealtimeClientEvent`'s types."""
ITEM_TYPES = ("message", "function_call", "function_call_output")
ROLES = ("system", "user", "assistant")


class Conversation:
    """The conversation of one Realtime call (not thread-safe: one event loop)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.response: Response | None = None
        self.audio_produced = False
        self.audio_buffered = False
        """Whether input audio waits to be committed (appended, or heard on the media track)."""

    @property
    def last_item_id(self) -> str | None:
        """The id of the conversation's newest item."""
        return next(reversed(self.items), None)

    def _add(self, item: dict[str, Any]) -> None:
        self.items[item["id"]] = item
        while len(self.items) > ITEMS_KEPT:
            del self.items[next(iter(self.items))]

    def answer(
        self, session: Mapping[str, Any], event: Mapping[str, Any], *, hold: bool = False
    ) -> list[Event]:
        """The server events a client event (other than `session.update`) gets; a
        `response.create` stays in progress if `hold`, for a `response.cancel` to end."""
        event_type = event["type"]
        event_id = event.get("event_id")
        if event_type not in CLIENT_EVENTS:
            return [
                realtime.error(
                    "invalid_value",
                    f"Invalid value: '{shown(event_type)}'. Supported values are: "
                    + ", ".join(f"'{name}'" for name in sorted(CLIENT_EVENTS))
                    + ".",
                    param="type",
                    event_id=event_id,
                )
            ]
        if event_type == "conversation.item.create":
            return self.create_item(event)
        if event_type in ("conversation.item.delete", "conversation.item.retrieve"):
            return self._by_item_id(event)
        if event_type == "conversation.item.truncate":
            return self._truncate(event)
        if event_type == "response.create":
            params = event.get("response", {})
            if not isinstance(params, Mapping):
                return [_invalid_type("response", "an object", event_id)]
            return self.create_response(session, params, event_id=event_id, hold=hold)
        if event_type == "response.cancel":
            return self.cancel(event)
        return self._audio_buffer(event)

    # Items.

    def create_item(self, event: Mapping[str, Any]) -> list[Event]:
        """`conversation.item.create`: the item added, or an `error` naming what is wrong."""
        event_id = event.get("event_id")
        item = event.get("item")
        if not isinstance(item, Mapping):
            return [_missing("item", event_id)]
        if item.get("type") not in ITEM_TYPES:
            return [_invalid_value("item.type", item.get("type"), ITEM_TYPES, event_id)]
        if item["type"] == "message":
            if item.get("role") not in ROLES:
                return [_invalid_value("item.role", item.get("role"), ROLES, event_id)]
            if not isinstance(item.get("content"), list):
                return [_missing("item.content", event_id)]
        elif item["type"] == "function_call_output" and not isinstance(item.get("call_id"), str):
            return [_missing("item.call_id", event_id)]
        item_id = item.get("id")
        if item_id is not None and (not isinstance(item_id, str) or item_id in self.items):
            return [
                realtime.error(
                    "item_id_already_exists" if item_id in self.items else "invalid_type",
                    f"Item id '{shown(item_id)}' cannot be used.",
                    param="item.id",
                    event_id=event_id,
                )
            ]
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self.items:
            return [_unknown_item("previous_item_id", previous, event_id)]
        added = {
            **copy.deepcopy(dict(item)),
            "id": item_id or new_id("item"),
            "object": "realtime.item",
            "status": "completed",
        }
        after = (
            self.last_item_id if previous is None else (None if previous == "root" else previous)
        )
        self._add(added)
        return [
            server_event(
                "conversation.item.added", item=copy.deepcopy(added), previous_item_id=after
            ),
            server_event(
                "conversation.item.done", item=copy.deepcopy(added), previous_item_id=after
            ),
        ]

    def _by_item_id(self, event: Mapping[str, Any]) -> list[Event]:
        event_id = event.get("event_id")
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            return [_missing("item_id", event_id)]
        if item_id not in self.items:
            return [_unknown_item("item_id", item_id, event_id)]
        if event["type"] == "conversation.item.delete":
            del self.items[item_id]
            return [server_event("conversation.item.deleted", item_id=item_id)]
        item = copy.deepcopy(self.items[item_id])
        return [server_event("conversation.item.retrieved", item=item)]

    def _truncate(self, event: Mapping[str, Any]) -> list[Event]:
        event_id = event.get("event_id")
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or item_id not in self.items:
            return [_unknown_item("item_id", item_id, event_id)]
        if self.items[item_id].get("role") != "assistant":
            return [
                realtime.error(
                    "invalid_value",
                    "Only an assistant message's audio can be truncated.",
                    param="item_id",
                    event_id=event_id,
                )
            ]
        fields = {name: event.get(name) for name in ("content_index", "audio_end_ms")}
        for name, value in fields.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return [_invalid_type(name, "a non-negative integer", event_id)]
        return [server_event("conversation.item.truncated", item_id=item_id, **fields)]

    def hear_user(self) -> tuple[str, list[Event]]:
        """Audio heard on the media track, committed as a user item; its id and announcement."""
        item_id = new_id("item")
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self.last_item_id
        self._add(item)
        return item["id"], [
            server_event(
                "input_audio_buffer.committed", item_id=item["id"], previous_item_id=previous
            ),
            server_event(
                "conversation.item.added", item=copy.deepcopy(item), previous_item_id=previous
            ),
        ]

    def transcribed(self, item_id: str, transcript: str) -> list[Event]:
        """The user item's transcript is known: `conversation.item.done` shows it."""
        item = self.items.get(item_id)
        if item is None:  # deleted meanwhile
            return []
        item["content"][0]["transcript"] = transcript
        return [server_event("conversation.item.done", item=copy.deepcopy(item))]

    # Responses.

    def create_response(
        self,
        session: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        event_id: object = None,
        function: str | None = None,
        hold: bool = False,
    ) -> list[Event]:
        """A response, run to its end unless `hold`; an `error` while another is active."""
        if self.response is not None:
            return [
                realtime.error(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {self.response.id}."
                    " Wait until the response is finished before creating a new one.",
                    event_id=event_id,
                )
            ]
        last = self.items.get(self.last_item_id or "")
        answering = last is not None and last.get("type") == "function_call_output"
        response = responses.planned(session, params, function, answering_tool_output=answering)
        emitted = responses.started(response, self.last_item_id)
        if response.in_conversation:
            self._add(response.items[0])
        if response.audio and response.function is None:
            self.audio_produced = True
        self.response = response
        if not hold:
            emitted.extend(self.finish())
        return emitted

    def finish(
        self,
        *,
        cancelled: bool = False,
        input_tokens: int = responses.DEFAULT_INPUT_TOKENS,
        output_tokens: int = responses.DEFAULT_OUTPUT_TOKENS,
    ) -> list[Event]:
        """End the active response (none: nothing): its remaining events, `response.done` last."""
        response, self.response = self.response, None
        if response is None:
            return []
        emitted = responses.finished(
            response, cancelled=cancelled, input_tokens=input_tokens, output_tokens=output_tokens
        )
        for item in response.items:
            if item["id"] in self.items:
                self.items[item["id"]] = copy.deepcopy(item)
        return emitted

    def cancel(self, event: Mapping[str, Any]) -> list[Event]:
        """`response.cancel`: the active response ends `cancelled`; none to cancel is an `error`."""
        wanted = event.get("response_id")
        if self.response is None or (wanted is not None and wanted != self.response.id):
            return [
                realtime.error(
                    "response_cancel_not_active",
                    "Cancellation failed: no active response found.",
                    event_id=event.get("event_id"),
                )
            ]
        return self.finish(cancelled=True, output_tokens=0)

    # Audio buffers.

    def _audio_buffer(self, event: Mapping[str, Any]) -> list[Event]:
        event_type = event["type"]
        event_id = event.get("event_id")
        if event_type == "input_audio_buffer.append":
            if not isinstance(event.get("audio"), str):
                return [_missing("audio", event_id)]
            self.audio_buffered = True
            return []  # OpenAI answers an append with nothing
        if event_type == "input_audio_buffer.clear":
            self.audio_buffered = False
            return [server_event("input_audio_buffer.cleared")]
        if event_type == "input_audio_buffer.commit":
            if not self.audio_buffered:
                return [
                    realtime.error(
                        "input_audio_buffer_commit_empty",
                        "Error committing input audio buffer: the buffer is empty.",
                        event_id=event_id,
                    )
                ]
            self.audio_buffered = False
            _, emitted = self.hear_user()
            return emitted
        # output_audio_buffer.clear: WebRTC's audio cut short.
        if self.response is None:
            return [
                realtime.error(
                    "response_not_active",
                    "There is no response whose audio could be cleared.",
                    event_id=event_id,
                )
            ]
        return [server_event("output_audio_buffer.cleared", response_id=self.response.id)]


def _missing(param: str, event_id: object) -> Event:
    return realtime.error(
        "missing_required_parameter",
        f"Missing required parameter: '{param}'.",
        param=param,
        event_id=event_id,
    )


def _invalid_type(param: str, expected: str, event_id: object) -> Event:
    return realtime.error(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}.",
        param=param,
        event_id=event_id,
    )


def _invalid_value(param: str, value: object, allowed: tuple[str, ...], event_id: object) -> Event:
    return realtime.error(
        "invalid_value",
        f"Invalid value: '{shown(value)}'. Supported values are: "
        + ", ".join(f"'{name}'" for name in allowed)
        + ".",
        param=param,
        event_id=event_id,
    )


def _unknown_item(param: str, item_id: object, event_id: object) -> Event:
    return realtime.error(
        "item_not_found",
        f"Item with item_id not found: '{shown(item_id)}'.",
        param=param,
        event_id=event_id,
    )
