"""OpenAI's webhook events the service acts on, read as OpenAI's API reference defines them.

The shapes are the openai SDK's (`openai.types.webhooks`): a pending SIP call
raises `realtime.call.incoming` (`data.call_id`, `rtc_...`) and, for GPT-Live,
`live.transport.incoming` (`data.session_id`, `data.type: "sip"`) and the
deprecated `live.call.incoming`; the first accept of either kind selects the
call's runtime. `safety_identifier.blocked` names an end user OpenAI blocked.
Unknown fields are ignored (OpenAI adds them); a missing one is a 400.

**Privacy.** `sip_headers` are the caller's untrusted metadata, with phone
numbers in them: read for `To` and `From` only, never logged or stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.contract.calls import CallKind

CALL_EVENTS: dict[str, CallKind] = {
    "realtime.call.incoming": "realtime",
    "live.transport.incoming": "live",
    "live.call.incoming": "live",
}
"""The events announcing a pending SIP call, and the kind of accept each leads to."""
SAFETY_BLOCKED = "safety_identifier.blocked"
EVENT_TYPES = frozenset({*CALL_EVENTS, SAFETY_BLOCKED})


class _Open(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SipHeader(_Open):
    """One header of the SIP INVITE (untrusted)."""

    name: str
    value: str


class IncomingCallData(_Open):
    """`data` of the three incoming-call events."""

    call_id: str | None = Field(default=None, max_length=128)
    session_id: str | None = Field(default=None, max_length=128)
    type: str | None = None
    """`live.transport.incoming`'s transport: always `sip` today."""
    sip_headers: list[SipHeader] = Field(default_factory=list, max_length=256)

    def header(self, name: str) -> str | None:
        """The first value of a SIP header, by case-insensitive name."""
        wanted = name.lower()
        return next((h.value for h in self.sip_headers if h.name.lower() == wanted), None)


class IncomingCall(_Open):
    """A pending SIP call (`realtime.call.incoming`, `live.transport.incoming`, ...)."""

    id: str
    type: Literal["realtime.call.incoming", "live.transport.incoming", "live.call.incoming"]
    data: IncomingCallData

    @property
    def kind(self) -> CallKind:
        """Which accept this event leads to."""
        return CALL_EVENTS[self.type]

    @property
    def pending_id(self) -> str | None:
        """The id to accept or reject: `call_id` (Realtime) or `session_id` (GPT-Live)."""
        return self.data.call_id if self.kind == "realtime" else self.data.session_id


class BlockedData(_Open):
    """`data` of `safety_identifier.blocked`."""

    safety_identifier: str = Field(min_length=1, max_length=256)
    safety_category: str = Field(default="", max_length=64)


class SafetyBlocked(_Open):
    """`safety_identifier.blocked`: OpenAI blocked the end user this identifier names."""

    id: str
    type: Literal["safety_identifier.blocked"]
    data: BlockedData
