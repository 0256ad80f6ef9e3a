"""The emulator's controls for tests and benchmarks, under `/_emulator/` (no key needed).

- The telephone's controls (`/_emulator/sip/…`, `/_emulator/safety/blocked`) are
  `phone_controls.py`'s. A SIP call's record (by its `rtc_…` or `live_…` id) adds
  `sip`: its outcome (`state`: ringing, accepted, rejected, referred, hung_up;
  `surface`, the accepted `session`, `status_code`, `target_uri`, its webhooks);
  until it is accepted it shows `state` `ringing` or `closed` and no media record.
- `GET /_emulator/calls/{id}`: the call's `state`, `kind`, how it `ended`
  (null while open) and `ended_at_ms`, its `session`, `sideband_updates` (trusted
  `session.update`s received) and `overrides`: each browser `session.update`
  as `{"at_ms", "reverted_after_ms"}`, the latter the milliseconds until the
  next sideband `session.update` (the service's revert), or null.
- `POST /_emulator/calls/{id}/client_event`: a client event JSON applied as if
  the browser had sent it on its data channel (untrusted: Live's allow-list
  applies); 200 `{"emitted": [event types]}`. With `?hold=true` a
  `response.create` stays in progress (`response.created` and its output item
  announced, nothing more) until a `response.cancel` ends it `cancelled` (or
  the `/response` control finishes it).
- `POST /_emulator/calls/{id}/hold`: `{"responses": true | false}`: from now on
  every `response.create` of the call, from its data channel or its sideband,
  is held so (or, with false, runs to its end at once again, the default);
  200 `{"hold_responses": bool}`. A browser's response then lasts until the
  service's cancel reaches it, on any machine: a test of that cancel is
  deterministic.
- `POST /_emulator/calls/{id}/response`: `{"input_tokens", "output_tokens",
  "function_call": {"name"}, "hold"}` (all optional): a Realtime call plays a
  whole response as if the model had answered (`response.created` …
  `response.done` with that usage); with `function_call` its output is a
  `function_call` item of that name; with `hold` it stays in progress (for a
  `response.cancel` to end) until the next such request finishes it. A Live
  call emits `session.usage.updated` with its seconds. 200 `{"emitted": [...]}`.
- `POST /_emulator/calls/{id}/turn`: `{"audio_ms"}` (optional, default 1000): the
  browser's audio heard and its turn ended by turn detection, as when audio arrives on
  a real call's media track. A Realtime call commits it (`input_audio_buffer.committed`,
  the user item, its transcript) and, unless the session's
  `audio.input.turn_detection.create_response` is false (OpenAI's default is true),
  starts its response as OpenAI does (`response.created` … `response.done`, run to its
  end: `/hold` holds `response.create`s only; none if a response is in progress). With
  turn detection null nothing is detected: the audio waits for the client's
  `input_audio_buffer.commit`, which never starts a response by itself. A Live call
  sends its transcript. 200 `{"emitted": [...]}`.
- The call's record also shows `client_events`, the timeline of client events
  received: `{"at_ms", "type", "source": "data_channel" | "sideband", "answered":
  [event types]}`, with `response_id` / `item_id` when the event named one (types
  and ids only, never content), and `hold_responses`.

Milliseconds count from the call's creation, on the monotonic clock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from emulator.calls import events
from emulator.calls.base import CallReport
from emulator.calls.errors import UnknownCall
from emulator.calls.events import Event
from emulator.calls.registry import CallRegistry
from emulator.errors import InvalidRequest

if TYPE_CHECKING:
    from emulator.calls.phone import Phone

CONTROL = re.compile(
    r"/_emulator/calls/([A-Za-z0-9_-]{1,128})(?:/(client_event|response|hold|turn))?"
)
DEFAULT_INPUT_TOKENS = 12
DEFAULT_OUTPUT_TOKENS = 24
MAX_TOKENS = 10_000_000
DEFAULT_AUDIO_MS = 1000
MAX_AUDIO_MS = 3_600_000


def json_response(
    status: int, payload: object, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response, serialized by orjson."""
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


def json_object(raw: bytes | str, param: str | None) -> dict[str, Any]:
    """The body as a JSON object; a 400 naming `param` if it is not one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequest("Expected a JSON object.", param=param, code="invalid_type")
    return value


async def control(
    registry: CallRegistry, phone: Phone, request: Request, path: str, method: str
) -> Response | None:
    """Answer a control route; None if the path and method are none of them."""
    match = CONTROL.fullmatch(path)
    if match is None:
        return None
    call_id, action = match.groups()
    if action is None:
        return describe(registry, call_id, phone) if method == "GET" else None
    if method != "POST":
        return None
    body = await request.body()
    if action == "client_event":
        hold = _flag(request.query_params.get("hold"))
        call = registry.get(call_id)
        emitted = call.client_event(json_object(body, None), trusted=False, hold=hold)
    elif action == "hold":
        return hold_responses(registry, call_id, body)
    elif action == "turn":
        emitted = play_turn(registry, call_id, body)
    else:
        emitted = emit_response(registry, call_id, body)
    return json_response(200, {"emitted": [event["type"] for event in emitted]})


def describe(registry: CallRegistry, call_id: str, phone: Phone | None = None) -> Response:
    """The call's state and record, open or recently ended; a SIP call's outcome too."""
    sip = phone.find(call_id) if phone is not None else None
    if sip is None:
        return json_response(200, _record(registry, call_id))
    answered = sip.answered_id()
    if answered is not None and sip.state != "rejected":
        return json_response(200, {**_record(registry, answered), "sip": sip.shown()})
    state = "ringing" if sip.state == "ringing" else "closed"
    ended = None if sip.state == "ringing" else sip.state
    kind = sip.surface or ("realtime" if call_id == sip.call_id else "live")
    record = {"state": state, "ended": ended, "ended_at_ms": None, "kind": kind}
    return json_response(200, {**record, "sip": sip.shown()})


def _record(registry: CallRegistry, call_id: str) -> dict[str, Any]:
    """A registry call's record, open or recently ended; `UnknownCall` otherwise."""
    with contextlib.suppress(UnknownCall):
        call = registry.get(call_id)
        state: dict[str, Any] = {
            "state": call.connection_state,
            "ended": None,
            "ended_at_ms": None,
        }
        return {**state, "kind": call.kind, **_shown(call.report())}
    ending = registry.ended(call_id)
    if ending is None:
        raise UnknownCall(f"No call with id '{call_id[:64]}'.")
    state = {"state": "closed", "ended": ending.reason, "ended_at_ms": ending.ended_at_ms}
    return {**state, "kind": ending.kind, **_shown(ending.report)}


def _shown(report: CallReport) -> dict[str, Any]:
    return {
        "overrides": report.overrides,
        "sideband_updates": report.sideband_updates,
        "session": report.session,
        "listeners": report.listeners,
        "client_events": report.client_events,
        "hold_responses": report.hold_responses,
    }


def _tokens(request: Mapping[str, Any], name: str, default: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise InvalidRequest(
            f"'{name}' must be an integer from 0 to {MAX_TOKENS}.", param=name, code="invalid_value"
        )
    return value


def _function_call(request: Mapping[str, Any]) -> str | None:
    value = request.get("function_call")
    if value is None:
        return None
    name = value.get("name") if isinstance(value, Mapping) else None
    if not isinstance(name, str) or not 1 <= len(name) <= 64:
        raise InvalidRequest(
            "'function_call' must be an object with a 'name' of 1 to 64 characters.",
            param="function_call.name",
            code="invalid_value",
        )
    return name


def _flag(value: str | None) -> bool:
    """A query flag: absent or `false` is False, `true` True; anything else a 400."""
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise InvalidRequest("'hold' must be true or false.", param="hold", code="invalid_value")


def hold_responses(registry: CallRegistry, call_id: str, body: bytes) -> Response:
    """Hold (or stop holding) every `response.create` of a Realtime call until cancelled."""
    request = json_object(body, None)
    hold = request.get("responses")
    if not isinstance(hold, bool):
        raise InvalidRequest(
            "'responses' must be a boolean.", param="responses", code="invalid_type"
        )
    call = registry.get(call_id)
    if call.kind != "realtime":
        raise InvalidRequest(
            "Only a Realtime call has responses to hold.", param="responses", code="invalid_value"
        )
    call.hold_responses = hold
    return json_response(200, {"hold_responses": hold})


def play_turn(registry: CallRegistry, call_id: str, body: bytes) -> list[Event]:
    """The browser's audio heard and its turn ended by turn detection (`BaseCall.heard`)."""
    request = json_object(body, None) if body.strip() else {}
    audio_ms = request.get("audio_ms", DEFAULT_AUDIO_MS)
    if (
        isinstance(audio_ms, bool)
        or not isinstance(audio_ms, int)
        or not 0 <= audio_ms <= MAX_AUDIO_MS
    ):
        raise InvalidRequest(
            f"'audio_ms' must be an integer from 0 to {MAX_AUDIO_MS}.",
            param="audio_ms",
            code="invalid_value",
        )
    return registry.get(call_id).heard(audio_ms)


def emit_response(registry: CallRegistry, call_id: str, body: bytes) -> list[Event]:
    """Play a response (Realtime: its events, with these tokens) or report seconds (Live)."""
    request = json_object(body, None) if body.strip() else {}
    input_tokens = _tokens(request, "input_tokens", DEFAULT_INPUT_TOKENS)
    output_tokens = _tokens(request, "output_tokens", DEFAULT_OUTPUT_TOKENS)
    function = _function_call(request)
    hold = request.get("hold", False)
    if not isinstance(hold, bool):
        raise InvalidRequest("'hold' must be a boolean.", param="hold", code="invalid_type")
    call = registry.get(call_id)
    if call.kind == "live":
        return [call.emit(events.server_event("session.usage.updated", usage=call.usage()))]
    return call.play_response(
        function=function, hold=hold, input_tokens=input_tokens, output_tokens=output_tokens
    )
