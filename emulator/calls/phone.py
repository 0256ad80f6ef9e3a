"""The telephone: pending SIP calls, their webhooks, and OpenAI's side of accept, reject, refer.

A call dialled to the project (`POST /_emulator/sip/incoming`) is pending
with two ids, as OpenAI's is: `rtc_…` for the Realtime surface
(`realtime.call.incoming`, `/v1/realtime/calls/{id}/…`) and `live_…` for
Live's (`live.transport.incoming` with `type: "sip"`, the deprecated
`live.call.incoming`, `/v1/live/sessions/{id}/…`). Which webhooks are sent
is the test's choice; the first successful accept, on either surface,
selects the runtime (the SDK's event docstrings), and every later accept,
reject or refer of a call no longer ringing is a 409.

An accepted call is a fake-media call in the registry under the accepted
id: its sideband serves it like a WebRTC call's (`session.created`, usage,
controls), until it is hung up or referred. The outcome (accepted with which
session, rejected with which status, referred to which target, hung up) is
kept and shown by `GET /_emulator/calls/{id}` under `sip`.

The SIP headers carry the numbers as a carrier sends them:
`From: "+1…" <sip:+1…@sip.example.com>;tag=…`, `To: <sip:+1…@sip.example.com>`,
and a `Call-ID`; nothing here logs them.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from emulator.calls.events import CallKind, new_id
from emulator.calls.registry import CallRegistry
from emulator.calls.webhooks import OutgoingWebhook, WebhookSender
from emulator.errors import Conflict, NotFound

log = structlog.get_logger("emulator.phone", component="emulator")
PENDING_KEPT = 1000
CARRIER_HOST = "sip.example.com"
DEFAULT_REJECT_STATUS = 603
State = Literal["ringing", "accepted", "rejected", "referred", "hung_up"]


class UnknownSipCall(NotFound):
    """404: no SIP call, pending or answered, has this id."""

    default_code = "call_not_found"


@dataclass(slots=True)
class SipCall:
    """One dialled call: its two ids, its SIP headers, its webhooks and its outcome."""

    call_id: str
    session_id: str
    sip_headers: list[dict[str, str]]
    state: State = "ringing"
    surface: CallKind | None = None
    """The surface whose accept (or reject, refer) answered it first."""
    session: dict[str, Any] | None = None
    status_code: int | None = None
    target_uri: str | None = None
    webhooks: list[OutgoingWebhook] = field(default_factory=list)

    def shown(self) -> dict[str, Any]:
        """The outcome as `GET /_emulator/calls/{id}` shows it under `sip` (no numbers)."""
        return {
            "state": self.state,
            "call_id": self.call_id,
            "session_id": self.session_id,
            "surface": self.surface,
            "session": self.session,
            "status_code": self.status_code,
            "target_uri": self.target_uri,
            "webhooks": [webhook.shown() for webhook in self.webhooks],
        }

    def answered_id(self) -> str | None:
        """The id the accepted call runs under in the registry, if it was accepted."""
        if self.session is None:  # set by the accept alone
            return None
        return self.call_id if self.surface == "realtime" else self.session_id


def sip_headers(to: str, caller: str) -> list[dict[str, str]]:
    """The INVITE's headers as OpenAI forwards them, in order (no authorization headers)."""
    tag = secrets.token_hex(4)
    return [
        {"name": "From", "value": f'"{caller}" <sip:{caller}@{CARRIER_HOST}>;tag={tag}'},
        {"name": "To", "value": f"<sip:{to}@{CARRIER_HOST}>"},
        {"name": "Call-ID", "value": f"{secrets.token_hex(16)}@{CARRIER_HOST}"},
        {"name": "CSeq", "value": "1 INVITE"},
    ]


class Phone:
    """Every recent SIP call, by both its ids, and the webhooks that announce them."""

    def __init__(self, registry: CallRegistry, sender: WebhookSender) -> None:
        self.registry = registry
        self.sender = sender
        self._calls: dict[str, SipCall] = {}
        self._order: deque[SipCall] = deque()

    def get(self, any_id: str) -> SipCall:
        """The SIP call with this `rtc_…` or `live_…` id; `UnknownSipCall` (404) otherwise."""
        call = self._calls.get(any_id)
        if call is None:
            raise UnknownSipCall(f"No call with id '{any_id[:64]}'.")
        return call

    def find(self, any_id: str) -> SipCall | None:
        """The SIP call with this id, or None (a WebRTC call, or nothing)."""
        return self._calls.get(any_id)

    def dial(self, to: str, caller: str) -> SipCall:
        """A new pending call from `caller` to `to`, ringing, announced by no webhook yet."""
        call = SipCall(new_id("rtc"), new_id("live"), sip_headers(to, caller))
        self._calls[call.call_id] = self._calls[call.session_id] = call
        self._order.append(call)
        if len(self._order) > PENDING_KEPT:
            old = self._order.popleft()
            self._calls.pop(old.call_id, None)
            self._calls.pop(old.session_id, None)
        log.info("sip_call_ringing", call_id=call.call_id, session_id=call.session_id)
        return call

    def announce(self, call: SipCall, kinds: list[str]) -> list[OutgoingWebhook]:
        """The call's webhooks of these event types, kept on the call for redelivery."""
        made = []
        for event_type in kinds:
            if event_type == "realtime.call.incoming":
                data: dict[str, Any] = {"call_id": call.call_id}
            else:
                data = {"session_id": call.session_id}
                if event_type == "live.transport.incoming":
                    data["type"] = "sip"
            data["sip_headers"] = call.sip_headers
            data["sip_media_security"] = "srtp"
            made.append(self.sender.new(event_type, data))
        call.webhooks.extend(made)
        return made

    def _ringing(self, call: SipCall, any_id: str, action: str) -> None:
        if call.state != "ringing":
            raise self._not_ringing(call, any_id, action)

    def _not_ringing(self, call: SipCall, any_id: str, action: str) -> Conflict:
        done = call.state.replace("_", " ")
        return Conflict(
            f"Cannot {action} call '{any_id[:64]}': it was already {done}.",
            code="call_not_ringing",
        )

    def accept(self, kind: CallKind, any_id: str, session: dict[str, Any]) -> None:
        """Answer a ringing call with this session; it runs on the sideband from now on."""
        call = self._surface(kind, any_id)
        self._ringing(call, any_id, "accept")
        self.registry.answer_phone(any_id, kind, session)
        call.state, call.surface = "accepted", kind
        call.session = self.registry.get(any_id).session
        log.info("sip_call_accepted", call_id=any_id, kind=kind)

    def reject(self, kind: CallKind, any_id: str, status_code: int | None) -> None:
        """Decline a ringing call with this SIP status (603 Decline by default)."""
        call = self._surface(kind, any_id)
        self._ringing(call, any_id, "reject")
        call.state, call.surface = "rejected", kind
        call.status_code = DEFAULT_REJECT_STATUS if status_code is None else status_code
        log.info("sip_call_rejected", call_id=any_id, status_code=call.status_code)

    async def refer(self, kind: CallKind, any_id: str, target_uri: str) -> None:
        """Transfer a ringing or accepted call (SIP REFER); OpenAI's leg of it ends."""
        call = self._surface(kind, any_id)
        answered = call.answered_id()
        on_call = answered == any_id and self.registry.ended(any_id) is None
        if not (call.state == "ringing" or (call.state == "accepted" and on_call)):
            raise self._not_ringing(call, any_id, "refer")
        call.state, call.target_uri = "referred", target_uri
        call.surface = call.surface or kind
        if answered is not None:
            await self.registry.get(answered).close("referred")
        log.info("sip_call_referred", call_id=any_id)

    async def hangup(self, kind: CallKind, any_id: str) -> bool:
        """End a SIP call on OpenAI's side; False if `any_id` is no SIP call (a WebRTC one)."""
        call = self.find(any_id)
        if call is None:
            return False
        call = self._surface(kind, any_id)
        if call.state == "ringing":
            call.state, call.surface = "hung_up", kind
            return True
        if call.state == "accepted" and call.answered_id() == any_id:
            await self.registry.hangup(any_id)
            call.state = "hung_up"
            return True
        raise UnknownSipCall(f"No open call with id '{any_id[:64]}'.")

    def _surface(self, kind: CallKind, any_id: str) -> SipCall:
        """The call, reached through the surface its id belongs to (`rtc_` or `live_`)."""
        call = self.get(any_id)
        if (kind == "realtime") != (any_id == call.call_id):
            raise UnknownSipCall(f"No call with id '{any_id[:64]}'.")
        return call
