"""Calls the service creates on OpenAI for a browser, and their hang-ups.

- Realtime: `POST /realtime/calls`, multipart `sdp` + `session` (the effective
  session the policy decided), as the openai SDK sends it. OpenAI answers
  `201`, the SDP answer, and `Location: /v1/realtime/calls/{call_id}`.
- GPT-Live: `POST /live/sessions`, JSON `{"session", "transport": {"type":
  "webrtc", "sdp"}}`; OpenAI answers `{"session": {"id"}, "transport":
  {"type": "webrtc", "sdp"}}`.
- Hang-up: `POST /realtime/calls/{id}/hangup`, `POST /live/sessions/{id}/hangup`.
- A phone call OpenAI announced (a SIP webhook) is answered, not created:
  `POST …/{id}/accept` with the session (Realtime: the session itself, a
  `RealtimeSessionCreateRequestGA`; GPT-Live: `{"session"}`), `…/reject` with
  `{"status_code"}` (a SIP status), `…/refer` with `{"target_uri"}`.

Creating a call is not idempotent (GPT-Live bills 15 seconds at creation), so
it follows `service.upstream.client`'s rule: retried only while the request
provably never reached OpenAI. An answer without a usable call id or SDP
answer is a 502: the caller could not use it, whatever OpenAI created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from service.contract.calls import CALL_ID, CallKind
from service.core.errors import NotFound, UpstreamError
from service.upstream.client import Reply, Upstream

PATHS: dict[CallKind, str] = {"realtime": "realtime/calls", "live": "live/sessions"}


@dataclass(frozen=True, slots=True)
class CreatedCall:
    """A call OpenAI created: its id and the SDP answer for the browser."""

    call_id: str
    answer: str
    upstream_status: int
    upstream_ms: float
    attempts: int


def _bad(what: str) -> UpstreamError:
    return UpstreamError(f"OpenAI's answer has no {what}", code="upstream_bad_response")


def _sdp_answer(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("v=0"):
        raise _bad("SDP answer")
    return value


def _call_id(value: object) -> str:
    if not isinstance(value, str) or not CALL_ID.fullmatch(value):
        raise _bad("call id")
    return value


def _realtime_answer(reply: Reply, elapsed_ms: float, attempts: int) -> CreatedCall:
    location = reply.headers.get("location", "")
    call_id = _call_id(location.rstrip("/").rsplit("/", 1)[-1] if location else None)
    try:
        answer = reply.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("SDP answer") from None
    return CreatedCall(call_id, _sdp_answer(answer), reply.status, elapsed_ms, attempts)


def _live_answer(reply: Reply, elapsed_ms: float, attempts: int) -> CreatedCall:
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        raise _bad("JSON body") from None
    session = data.get("session") if isinstance(data, dict) else None
    transport = data.get("transport") if isinstance(data, dict) else None
    call_id = _call_id(session.get("id") if isinstance(session, dict) else None)
    answer = _sdp_answer(transport.get("sdp") if isinstance(transport, dict) else None)
    return CreatedCall(call_id, answer, reply.status, elapsed_ms, attempts)


def _multipart(sdp: str, session: Mapping[str, Any]) -> tuple[bytes, str]:
    """The body the openai SDK sends to `/realtime/calls`, encoded by httpx."""
    request = httpx.Request(
        "POST",
        "http://multipart.invalid/",
        files=[
            ("sdp", (None, sdp.encode(), "application/sdp")),
            ("session", (None, orjson.dumps(session), "application/json")),
        ],
    )
    return request.read(), request.headers["content-type"]


async def create_realtime_call(
    upstream: Upstream, sdp: str, session: Mapping[str, Any], request_id: str
) -> CreatedCall:
    """Create a Realtime WebRTC call with the server's key and the effective session."""
    content, content_type = _multipart(sdp, session)
    return await upstream.exchange(
        upstream.url(PATHS["realtime"]), content, request_id, content_type, _realtime_answer
    )


async def create_live_session(
    upstream: Upstream, sdp: str, session: Mapping[str, Any], request_id: str
) -> CreatedCall:
    """Create a GPT-Live WebRTC session with the server's key and the effective session."""
    body = orjson.dumps({"session": session, "transport": {"type": "webrtc", "sdp": sdp}})
    return await upstream.exchange(
        upstream.url(PATHS["live"]), body, request_id, "application/json", _live_answer
    )


async def create_call(
    upstream: Upstream, kind: CallKind, sdp: str, session: Mapping[str, Any], request_id: str
) -> CreatedCall:
    """Create a call of either kind with the server's key and the effective session."""
    create = create_realtime_call if kind == "realtime" else create_live_session
    return await create(upstream, sdp, session, request_id)


def _done(reply: Reply, elapsed_ms: float, attempts: int) -> None:
    return None


async def hang_up(upstream: Upstream, kind: CallKind, call_id: str, request_id: str) -> None:
    """End a call on OpenAI; a 404 there (it already ended) is a 404 here."""
    url = upstream.url(f"{PATHS[kind]}/{call_id}/hangup")
    gone = NotFound(f"No open call with id '{call_id}'.", code="call_not_found")
    await upstream.exchange(url, b"", request_id, None, _done, missing=gone)


def _answered(reply: Reply, elapsed_ms: float, attempts: int) -> float:
    return elapsed_ms


def accept_body(kind: CallKind, session: Mapping[str, Any]) -> bytes:
    """What `…/accept` carries: the Realtime session itself, or GPT-Live's `{session}`."""
    if kind == "realtime":
        return orjson.dumps({**session, "type": "realtime"})
    return orjson.dumps({"session": {**session, "type": "live"}})


async def accept_call(
    upstream: Upstream, kind: CallKind, call_id: str, session: Mapping[str, Any], request_id: str
) -> float:
    """Answer a pending phone call with the effective session; the ms OpenAI took.

    Not retried once it may have arrived (`Upstream.exchange`): a second accept of
    a call already answered is refused by OpenAI anyway. A 404: the caller hung up.
    """
    url = upstream.url(f"{PATHS[kind]}/{call_id}/accept")
    gone = NotFound(f"No pending call with id '{call_id}'.", code="call_not_found")
    body = accept_body(kind, session)
    return await upstream.exchange(url, body, request_id, "application/json", _answered, gone)


async def reject_call(
    upstream: Upstream, kind: CallKind, call_id: str, status: int, request_id: str
) -> None:
    """Decline a pending phone call with a SIP status (486 Busy Here, 603 Decline)."""
    await _control(upstream, kind, call_id, "reject", {"status_code": status}, request_id)


async def refer_call(
    upstream: Upstream, kind: CallKind, call_id: str, target_uri: str, request_id: str
) -> None:
    """Transfer a phone call (SIP REFER) to `target_uri` (`tel:` or `sip:`)."""
    await _control(upstream, kind, call_id, "refer", {"target_uri": target_uri}, request_id)


async def _control(
    upstream: Upstream,
    kind: CallKind,
    call_id: str,
    action: str,
    body: Mapping[str, Any],
    request_id: str,
) -> None:
    """POST one of a phone call's controls (`reject`, `refer`); a 404: the call is gone."""
    url = upstream.url(f"{PATHS[kind]}/{call_id}/{action}")
    gone = NotFound(f"No open call with id '{call_id}'.", code="call_not_found")
    content = orjson.dumps(body)
    await upstream.exchange(url, content, request_id, "application/json", _done, missing=gone)
