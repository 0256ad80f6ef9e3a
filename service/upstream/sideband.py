"""The sideband: the server's own WebSocket into a call it created.

OpenAI's design for server-created calls: the server opens
`wss://…/v1/realtime?call_id={id}` (Realtime) or
`wss://…/v1/live/sessions/{id}/attach` (GPT-Live) with its key, receives every
server event of the call (`session.updated`, usage, `session.closed`, …) and
may send client events that are trusted (no data-channel allow-list). The
supervisor (`service.calls.supervisor`) is its only user.

`WebSocketSideband` connects with the `websockets` library (the one the
openai SDK uses for Realtime); the in-process emulator has its own
`Sideband` (`service.upstream.emulator_calls.sideband`) because an ASGI app
has no socket to connect to. Both raise `SidebandClosed` with a reason:

- `ended`: the call is over (a normal close after the call ended);
- `unknown_call`: the upstream does not know the call (HTTP 404 at the
  handshake, or close code 4404): it ended before we attached;
- `dropped`: anything else (network, timeout, abnormal close): the caller
  reconnects with backoff while the call may still live.

Nothing here logs an event's content: events carry transcripts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypeAlias

CallKind: TypeAlias = Literal["realtime", "live"]
CloseReason: TypeAlias = Literal["ended", "unknown_call", "dropped"]
MAX_EVENT_BYTES = 4 * 1024 * 1024
"""The largest sideband event accepted (a long `response.done`); larger drops the socket."""
CLOSE_UNKNOWN_CALL = 4404


class SidebandClosed(Exception):
    """The sideband is gone; `reason` says whether the call is (`ended`, `unknown_call`)."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason)
        self.reason: CloseReason = reason


class SidebandConnection(Protocol):
    """One attached sideband."""

    async def recv(self) -> dict[str, Any]:
        """The next server event (a JSON object); `SidebandClosed` when the socket ends."""
        ...

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send a client event (trusted); `SidebandClosed` if the socket is gone."""
        ...

    async def close(self) -> None:
        """Detach (the call goes on)."""
        ...


class Sideband(Protocol):
    """Opens sidebands to calls."""

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        """Attach to a call; `SidebandClosed` if it cannot (`unknown_call`, `dropped`)."""
        ...


QUIET = logging.getLogger("service.sideband.websockets")
"""The websockets library's logger for our connections: it logs handshake
headers (the API key) at DEBUG, so it never goes below WARNING."""
QUIET.setLevel(logging.WARNING)
