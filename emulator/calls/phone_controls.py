"""The telephone's test controls, under `/_emulator/` (no key needed), answered with webhooks.

- `POST /_emulator/sip/incoming`: `{"to", "from", "kind": "realtime" | "live",
  "both", "legacy", "bad_signature", "age_s", "copies"}` (all but `to` and `from`
  optional): a call dialled from `from` to `to` rings, and its webhooks are
  posted to the service, each awaited: `realtime.call.incoming` for a
  Realtime number, `live.transport.incoming` (`type: "sip"`) for a Live one,
  and with `both` the other surface's too (OpenAI may raise both for one
  call); `legacy` adds Live's deprecated `live.call.incoming`.
  `bad_signature` signs them with another secret, `age_s` backdates their
  timestamp, `copies` (1 to 16) sends each that many times at once (the
  same `webhook-id` delivered concurrently, as retries across replicas
  are). 200 `{"call_id": "rtc_…", "session_id": "live_…", "webhooks": [{"id",
  "type", "statuses"}]}`, `statuses` the service's answers (null: none came).
- `POST /_emulator/sip/{id}/redeliver`: `{"bad_signature", "age_s", "copies"}`
  (optional): every webhook of the call again, same `webhook-id` and body,
  signed anew; 200 `{"webhooks": [...]}`.
- `POST /_emulator/safety/blocked`: `{"safety_identifier", "safety_category",
  "bad_signature"}` (the first required): `safety_identifier.blocked` posted;
  200 `{"webhooks": [...]}`.

Every figure a test may vary is bounded, and the numbers are never logged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from emulator.calls.controls import json_object, json_response
from emulator.calls.phone import Phone
from emulator.calls.webhooks import OutgoingWebhook
from emulator.errors import InvalidRequest

REDELIVER = re.compile(r"/_emulator/sip/([A-Za-z0-9_-]{1,128})/redeliver")
INCOMING = "/_emulator/sip/incoming"
BLOCKED = "/_emulator/safety/blocked"
PREFIXES = ("/_emulator/sip/", "/_emulator/safety/")
MAX_TEXT = 128
MAX_AGE_S = 86_400
MAX_COPIES = 16
DEFAULT_CATEGORY = "cyber"
INCOMING_EVENTS = {"realtime": "realtime.call.incoming", "live": "live.transport.incoming"}


def _text(request: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = request.get(name, default)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT:
        raise InvalidRequest(
            f"'{name}' must be a string of 1 to {MAX_TEXT} characters.",
            param=name,
            code="invalid_value",
        )
    return value


def _flag(request: Mapping[str, Any], name: str) -> bool:
    value = request.get(name, False)
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a boolean.", param=name, code="invalid_type")
    return value


def _age(request: Mapping[str, Any]) -> int:
    value = request.get("age_s", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AGE_S:
        message = f"'age_s' must be an integer from 0 to {MAX_AGE_S}."
        raise InvalidRequest(message, param="age_s", code="invalid_value")
    return value


async def phone_control(phone: Phone, request: Request, path: str) -> Response | None:
    """Answer a telephone control (POST only); None if the path is none of them."""
    redeliver = REDELIVER.fullmatch(path)
    if path not in (INCOMING, BLOCKED) and redeliver is None:
        return None
    if request.method != "POST":
        return None
    body = await request.body()
    # A redelivery's options are optional; every other control needs its JSON object.
    options = json_object(body, None) if body.strip() or redeliver is None else {}
    if path == INCOMING:
        return await incoming(phone, options)
    if path == BLOCKED:
        return await blocked(phone, options)
    call = phone.get(redeliver.group(1)) if redeliver else None
    if call is None:
        return None
    await _deliver(phone, call.webhooks, options)
    return json_response(200, {"webhooks": [webhook.shown() for webhook in call.webhooks]})


async def incoming(phone: Phone, options: Mapping[str, Any]) -> Response:
    """Ring a call and post its webhooks, awaiting the service's answers."""
    to, caller = _text(options, "to"), _text(options, "from")
    kind = options.get("kind", "realtime")
    if kind not in INCOMING_EVENTS:
        raise InvalidRequest("'kind' must be 'realtime' or 'live'.", param="kind")
    both, legacy = _flag(options, "both"), _flag(options, "legacy")
    types = [INCOMING_EVENTS[kind]]
    if both:
        types.append(INCOMING_EVENTS["live" if kind == "realtime" else "realtime"])
    if legacy:
        types.append("live.call.incoming")
    phone.sender.require()  # refuse before ringing if no webhook can be sent
    call = phone.dial(to, caller)
    webhooks = phone.announce(call, types)
    await _deliver(phone, webhooks, options)
    return json_response(
        200,
        {
            "call_id": call.call_id,
            "session_id": call.session_id,
            "webhooks": [webhook.shown() for webhook in webhooks],
        },
    )


async def blocked(phone: Phone, options: Mapping[str, Any]) -> Response:
    """Post `safety_identifier.blocked` for this identifier."""
    data = {
        "safety_identifier": _text(options, "safety_identifier"),
        "safety_category": _text(options, "safety_category", DEFAULT_CATEGORY),
        "model": "gpt-realtime",
    }
    webhook = phone.sender.new("safety_identifier.blocked", data)
    await _deliver(phone, [webhook], options)
    return json_response(200, {"webhooks": [webhook.shown()]})


async def _deliver(
    phone: Phone, webhooks: list[OutgoingWebhook], options: Mapping[str, Any]
) -> None:
    """Each webhook in turn, `copies` of it at once (concurrent deliveries of one id)."""
    bad, age, copies = _flag(options, "bad_signature"), _age(options), _copies(options)
    for webhook in webhooks:
        await asyncio.gather(
            *(phone.sender.deliver(webhook, bad_signature=bad, age_s=age) for _ in range(copies))
        )


def _copies(request: Mapping[str, Any]) -> int:
    value = request.get("copies", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COPIES:
        message = f"'copies' must be an integer from 1 to {MAX_COPIES}."
        raise InvalidRequest(message, param="copies", code="invalid_value")
    return value
