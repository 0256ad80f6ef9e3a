"""The server events an emulated call sends, and how it answers client events.

Pure functions on plain dicts, shaped like the openai SDK's models
(`openai.types.realtime` and `openai.types.live`), so the tests validate them
there. Realtime has no data-channel allow-list; a Live session enforces
`client.data_channel.allowed_client_events` on the browser's channel only (a
trusted sideband is never restricted), answering a refused event with an
`error` event, as OpenAI does. Realtime's own rules are `realtime`'s and its
conversation's (`conversation`, `responses`). Usage is reported as OpenAI
reports it: Realtime's `response.done` carries token counts (`responses.usage`);
Live's `session.usage.updated` and `session.closed` carry seconds (`BaseCall.usage`).
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Mapping
from typing import Any, Literal

CallKind = Literal["realtime", "live"]
Event = dict[str, Any]

TRANSCRIPT = "Hello from the emulator. (fixed transcript: no speech recognition here)"
SESSION_LIFETIME_S = 3600
# Live client events with a documented acknowledgement; the rest are accepted silently.
LIVE_ACKS = {
    "session.input_audio.mute": "session.input_audio.muted",
    "session.input_audio.unmute": "session.input_audio.unmuted",
    "session.instructions.append": "session.instructions.appended",
    "session.commentary.append": "session.commentary.appended",
    "session.thinking.append": "session.thinking.appended",
}
LIVE_CLIENT_EVENTS = frozenset(
    {
        *LIVE_ACKS,
        "session.start",
        "session.update",
        "session.close",
        "session.input_audio.append",
        "session.output_audio.fixture.play",
        "decision.create",
        "decision.item.create",
        "decision.item.delete",
        "response.item.create",
        "response.create",
    }
)
# "Model, frontend instructions, audio, and startup input are immutable" (SessionUpdateEvent).
LIVE_IMMUTABLE = ("model", "instructions", "audio", "input", "client")


def new_id(prefix: str) -> str:
    """An OpenAI-looking id: `prefix_` and 24 hex digits."""
    return f"{prefix}_{secrets.token_hex(12)}"


def server_event(event_type: str, /, **fields: Any) -> Event:
    """A server event with a fresh `event_id`."""
    return {"type": event_type, "event_id": new_id("event"), **fields}


def merged(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `update` applied the way a sparse session update is: objects merge."""
    result = copy.deepcopy(dict(base))
    for key, value in update.items():
        current = result.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            result[key] = merged(current, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def resolved_session(kind: CallKind, call_id: str, session: Mapping[str, Any]) -> dict[str, Any]:
    """The session as its first event shows it, with the fields the server assigns."""
    if kind == "live":
        return {
            **copy.deepcopy(dict(session)),
            "id": call_id,
            "status": "active",
            "expires_at": int(time.time()) + SESSION_LIFETIME_S,
        }
    result = {"type": "realtime", "object": "realtime.session", **copy.deepcopy(dict(session))}
    result.setdefault("id", new_id("sess"))
    return result


def session_opened(kind: CallKind, session: Mapping[str, Any]) -> Event:
    """`session.created` (Realtime) or `session.started` (Live)."""
    name = "session.started" if kind == "live" else "session.created"
    return server_event(name, session=copy.deepcopy(dict(session)))


def transcript(kind: CallKind, audio_ms: int, item_id: str | None = None) -> Event:
    """The one transcript event a call sends once audio has arrived (Realtime: of `item_id`)."""
    if kind == "live":
        return server_event(
            "session.input_transcript.delta", delta=TRANSCRIPT, start_ms=0, end_ms=audio_ms
        )
    return server_event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id or new_id("item"),
        content_index=0,
        transcript=TRANSCRIPT,
        usage={"type": "duration", "seconds": audio_ms / 1000},
    )


def error_event(
    code: str, message: str, *, param: str | None = None, client_event_id: str | None = None
) -> Event:
    """An `error` server event in the shape both APIs use."""
    error: dict[str, Any] = {"type": "invalid_request_error", "code": code, "message": message}
    if param is not None:
        error["param"] = param
    if client_event_id is not None:
        error["client_event_id"] = client_event_id
    return server_event("error", error=error)


def shown(value: object) -> str:
    """A client-supplied string, cut short for an error message or a record."""
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "..."


def allowed_client_events(session: Mapping[str, Any]) -> frozenset[str] | None:
    """The Live allow-list, or None when every event is allowed (omitted, null or "all")."""
    client = session.get("client")
    channel = client.get("data_channel") if isinstance(client, Mapping) else None
    allowed = channel.get("allowed_client_events") if isinstance(channel, Mapping) else None
    if allowed is None or allowed == "all":
        return None
    return frozenset(str(name) for name in allowed)


def refusal(
    kind: CallKind, session: Mapping[str, Any], event: object, *, trusted: bool
) -> Event | None:
    """The `error` a client event gets before it is applied, or None if it may go on."""
    if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
        return error_event("invalid_event", "A client event must be a JSON object with a 'type'.")
    event_type: str = event["type"]
    client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    if kind == "realtime":
        return None
    allowed = None if trusted else allowed_client_events(session)
    if allowed is not None and event_type not in allowed:
        return error_event(
            "client_event_not_allowed",
            f"Client event type '{shown(event_type)}' is not allowed on this data channel "
            "(client.data_channel.allowed_client_events).",
            param="type",
            client_event_id=client_event_id,
        )
    if event_type not in LIVE_CLIENT_EVENTS:
        return error_event(
            "unknown_event_type",
            f"Unknown client event type '{shown(event_type)}'.",
            param="type",
            client_event_id=client_event_id,
        )
    if event_type == "session.start":
        return error_event(
            "invalid_event",
            "A WebRTC session is started by the server; do not send 'session.start'.",
            param="type",
            client_event_id=client_event_id,
        )
    update = event.get("session")
    if event_type == "session.update" and isinstance(update, Mapping):
        for field in LIVE_IMMUTABLE:
            if field in update:
                return error_event(
                    "immutable_parameter",
                    f"'session.{field}' cannot change after the session started.",
                    param=f"session.{field}",
                    client_event_id=client_event_id,
                )
    return None


def acknowledgement(kind: CallKind, event: Mapping[str, Any], elapsed_ms: int) -> Event | None:
    """What an accepted client event other than `session.update`/`session.close` answers."""
    if kind != "live":
        return None
    ack = LIVE_ACKS.get(event["type"])
    if ack is None:
        return None
    fields: dict[str, Any] = {}
    if isinstance(event.get("event_id"), str):
        fields["client_event_id"] = event["event_id"]
    if ack.endswith("appended"):
        fields.update(start_ms=elapsed_ms, end_ms=elapsed_ms)
    return server_event(ack, **fields)
