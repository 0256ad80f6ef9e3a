"""What a Realtime session refuses, as OpenAI refuses it: pure functions on plain dicts.

OpenAI answers a client event it refuses with an `error` server event
(`RealtimeErrorEvent`): `invalid_request_error`, a `code`, a `message`, the
`param` at fault and the client event's own `event_id` echoed (both null when
there is none), and leaves the session as it was (no `session.updated`).

The session rules (`session_update_refusal`) come from `SessionUpdateEvent`:
any field may change "except for `voice` and `model`", and "`voice` can be
updated only if there have been no other audio outputs yet". A `session.update`
restating the session's own model or voice is accepted: only a change is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.events import Event, server_event

DEFAULT_MODEL = "gpt-realtime"
"""The model of a call created without one (`POST /v1/realtime/calls` with a bare offer)."""
DEFAULT_VOICE = "alloy"
"""The voice of a session that names none (`RealtimeAudioConfigOutput.voice`'s default)."""
TURN_DETECTORS = ("server_vad", "semantic_vad")
"""The turn detection types that commit a user turn (and may start its response)."""


def error(code: str, message: str, *, param: str | None = None, event_id: object = None) -> Event:
    """A Realtime `error` event; `event_id` is the refused client event's, if it had one."""
    return server_event(
        "error",
        error={
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id if isinstance(event_id, str) else None,
        },
    )


def model_of(session: Mapping[str, Any]) -> str:
    """The session's model (OpenAI's default when it was created without one)."""
    model = session.get("model")
    return model if isinstance(model, str) else DEFAULT_MODEL


def voice_of(session: Mapping[str, Any]) -> str:
    """The session's output voice (`audio.output.voice`, or OpenAI's default)."""
    audio = session.get("audio")
    output = audio.get("output") if isinstance(audio, Mapping) else None
    voice = output.get("voice") if isinstance(output, Mapping) else None
    return voice if isinstance(voice, str) else DEFAULT_VOICE


def turn_detection(session: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The session's `audio.input.turn_detection` (OpenAI's server_vad when absent), or None
    when it is null: then nothing is detected, and only the client commits a turn."""
    audio = session.get("audio")
    audio_in = audio.get("input") if isinstance(audio, Mapping) else None
    if not isinstance(audio_in, Mapping) or "turn_detection" not in audio_in:
        return {"type": "server_vad"}
    detection = audio_in["turn_detection"]
    return detection if isinstance(detection, Mapping) else None


def responds_to_turns(session: Mapping[str, Any]) -> bool:
    """Whether a turn committed by turn detection starts a response, as OpenAI's server_vad and
    semantic_vad do unless `create_response` is false (absent, it is true)."""
    detection = turn_detection(session)
    if detection is None or detection.get("type", "server_vad") not in TURN_DETECTORS:
        return False
    return detection.get("create_response", True) is not False


def _updated_voice(update: Mapping[str, Any]) -> object:
    audio = update.get("audio")
    output = audio.get("output") if isinstance(audio, Mapping) else None
    return output.get("voice") if isinstance(output, Mapping) else None


def session_update_refusal(
    session: Mapping[str, Any], event: Mapping[str, Any], *, audio_produced: bool
) -> Event | None:
    """The `error` a Realtime `session.update` gets, or None if it may be applied."""
    event_id = event.get("event_id")
    update = event.get("session")
    if not isinstance(update, Mapping):
        return error(
            "missing_required_parameter",
            "Missing required parameter: 'session'.",
            param="session",
            event_id=event_id,
        )
    if "model" in update and update["model"] != model_of(session):
        # OpenAI documents the rule, not its code: `cannot_update_model` mirrors
        # the `cannot_update_voice` it does send; `param` names the field.
        return error(
            "cannot_update_model",
            "Cannot update a session's model: create a new call for another model.",
            param="session.model",
            event_id=event_id,
        )
    voice = _updated_voice(update)
    if audio_produced and voice is not None and voice != voice_of(session):
        # OpenAI's own words and code; it sends no `param` with them.
        return error(
            "cannot_update_voice",
            "Cannot update a conversation's voice if assistant audio is present.",
            event_id=event_id,
        )
    return None
