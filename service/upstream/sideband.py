"""The sideband: the server's own WebSocket into a call it created.

OpenAI's design for server-created calls: the server opens
`wss://…/v1/realtime?call_id={id}` (Realtime) or
`wss://…/v1/live/sessions/{id}/attach` (GPT-Live) with its key, receives every
server event of the call (`session.updated`, usage, `session.closed`, …) and
may send client events that are trusted (no data-channel allow-list). The
supervisor (`service.calls.supervisor`) is its only user.

`WebSocketSideband` connects with the `websockets` library (the one the
openai SDK uses for Realtime); the in-process emulator is reached through
`service.server.emulated.EmulatedSideband` because an ASGI app has no socket
to connect to. Both raise `SidebandClosed` with a reason:

- `ended`: a normal close (1000). OpenAI closes so when the call ends, but a
  normal close alone does not prove it: the caller confirms the end by
  attaching again (404) before it forgets the call;
- `unknown_call`: the upstream does not know the call (HTTP 404 at the
  handshake, or close code 4404): it ended, or never was;
- `dropped`: anything else (network, timeout, refusal, abnormal close, a
  frame over `MAX_EVENT_BYTES`): the caller reconnects with backoff while
  the call may still live. `detail` names why (a status, an error's type),
  for the caller's aggregate log line: nothing here logs per attempt.

A hostile or broken upstream must not cost more than its own call.
`_WebSocketConnection.recv` reads raw frames and, past
`CALLS_SIDEBAND_MAX_EVENTS_PER_SECOND` in the current second (by the
injected clock), drops them unparsed and counts them; a sideband over that
budget for `FLOOD_SECONDS` seconds in a row raises `SidebandFlooded` (the
caller hangs the call up). Every `YIELD_EVERY` frames it yields to the event
loop, since a socket whose frames are already buffered would otherwise never
let another task run. Dropped and unreadable frames are logged in aggregate
(`service.core.tally`), one line per connection per interval, never per
frame. The in-process emulator's sideband (`service.server.emulated`) hands
over parsed events and is not budgeted: it is the emulator, not a stranger.

Nothing here logs an event's content: events carry transcripts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from socket import SO_RCVBUF, SOL_SOCKET
from typing import Any, Literal, Protocol, TypeAlias

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

from service.contract.calls import CallKind
from service.core import metrics
from service.core.clock import Clock, wall_ms
from service.core.tally import Tally

log = structlog.get_logger("service.sideband")

CloseReason: TypeAlias = Literal["ended", "unknown_call", "dropped"]
MAX_EVENT_BYTES = 4 * 1024 * 1024
"""The largest sideband event accepted (a long `response.done`); larger drops the socket."""
CLOSE_UNKNOWN_CALL = 4404
FLOOD_SECONDS = 5
"""Seconds in a row over the event budget before the sideband counts as flooding."""
YIELD_EVERY = 32
"""Frames read between two yields to the event loop."""
DROP_PAUSE_S = 0.02
"""Over budget, the pause after each `YIELD_EVERY` dropped frames: dropping is paced too
(at most ~1,600 frames a second a call), and TCP slows the flooder at its end."""
RECEIVE_BUFFER_BYTES = 32 * 1024
"""A sideband socket's kernel receive buffer: it bounds the bytes one read hands the
websockets parser (all of them parsed in one callback), so a flooding socket holds the
event loop for ~a millisecond at a time, not for a 256 KB read's thousands of frames.
It is also TCP's window: ~64 KB (Linux doubles it) per round trip, ample for a call's
events; a rare event near `MAX_EVENT_BYTES` takes a few round trips more."""


class SidebandClosed(Exception):
    """The sideband is gone; `reason` says whether the call may be (see the module docstring)."""

    def __init__(self, reason: CloseReason, detail: str = "") -> None:
        super().__init__(reason)
        self.reason: CloseReason = reason
        self.detail = detail or reason


class SidebandFlooded(Exception):
    """The sideband sent more than its event budget for `FLOOD_SECONDS` seconds in a row."""


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


def sideband_url(base_url: str, kind: CallKind, call_id: str) -> str:
    """The sideband's URL under the upstream base (`https://…/v1` -> `wss://…/v1/…`)."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    if kind == "realtime":
        return f"{base}/realtime?call_id={call_id}"
    return f"{base}/live/sessions/{call_id}/attach"


class WebSocketSideband:
    """Sidebands over the network with the server's key (websockets; proxies from the env).

    No compression: a deflate context per connection costs ~300 KB, and one
    worker holds thousands of sidebands that carry little.
    """

    def __init__(
        self,
        base_url: str,
        key_headers: Mapping[str, str],
        max_events_per_second: int = 500,
        clock: Clock = wall_ms,
    ) -> None:
        self._base_url = base_url
        self._headers = dict(key_headers)
        self._budget = max_events_per_second
        self._clock = clock

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        url = sideband_url(self._base_url, kind, call_id)
        try:
            socket = await connect(
                url,
                additional_headers=self._headers,
                compression=None,
                max_size=MAX_EVENT_BYTES,
                open_timeout=10,
                ping_interval=30,
                ping_timeout=20,
                close_timeout=2,
                logger=QUIET,
                user_agent_header="realtime-token-proxy",
            )
        except InvalidStatus as refused:
            status = refused.response.status_code
            if status == 404:
                raise SidebandClosed("unknown_call") from None
            raise SidebandClosed("dropped", f"status {status}") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as failed:
            raise SidebandClosed("dropped", type(failed).__name__) from None
        raw = socket.transport.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(SOL_SOCKET, SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        return _WebSocketConnection(socket, kind, call_id, self._budget, self._clock)


class EventBudget:
    """Events admitted per second (by the clock), and how many seconds in a row ran over."""

    def __init__(self, per_second: int, clock: Clock) -> None:
        self._per_second = per_second
        self._clock = clock
        self._second = clock() // 1000
        self._used = 0
        self.flooded_seconds = 0
        """Whole seconds in a row, up to the last one, that ran over the budget."""

    def admit(self) -> bool:
        """Count one event; False when it is over this second's budget."""
        second = self._clock() // 1000
        if second != self._second:
            over = self._used > self._per_second
            contiguous = second == self._second + 1
            self.flooded_seconds = self.flooded_seconds + 1 if over and contiguous else 0
            self._second, self._used = second, 0
        self._used += 1
        return self._used <= self._per_second


class _WebSocketConnection:
    def __init__(
        self,
        socket: ClientConnection,
        kind: CallKind,
        call_id: str,
        budget: int,
        clock: Clock,
    ) -> None:
        self._socket = socket
        self._budget = EventBudget(budget, clock)
        self._frames = 0
        self._dropped = Tally(log, "sideband_events_dropped", clock, kind=kind, call_id=call_id)
        self._unreadable = Tally(
            log, "sideband_unreadable_events", clock, kind=kind, call_id=call_id
        )

    async def recv(self) -> dict[str, Any]:
        while True:
            try:
                message = await self._socket.recv(decode=False)
            except ConnectionClosed as closed:
                self._flush()
                raise SidebandClosed(_reason(closed), _detail(closed)) from None
            self._frames += 1
            admitted = self._budget.admit()
            if self._frames % YIELD_EVERY == 0:
                await asyncio.sleep(0 if admitted else DROP_PAUSE_S)
            if not admitted:
                metrics.SIDEBAND_EVENTS_DROPPED.labels("budget").inc()
                self._dropped.add(len(message))
                if self._budget.flooded_seconds >= FLOOD_SECONDS:
                    self._flush()
                    raise SidebandFlooded
                continue
            try:
                event = orjson.loads(message)
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                return event
            metrics.SIDEBAND_EVENTS_DROPPED.labels("unreadable").inc()
            self._unreadable.add(len(message))

    async def send(self, event: Mapping[str, Any]) -> None:
        try:
            await self._socket.send(orjson.dumps(event).decode())
        except ConnectionClosed as closed:
            raise SidebandClosed(_reason(closed), _detail(closed)) from None

    async def close(self) -> None:
        self._flush()
        try:
            await self._socket.close()
        finally:
            # A close cancelled while it waits for the peer's close frame (a second
            # cancel of the call's task, a shutdown) would leave the socket open and
            # unread: a flooding peer then blocks on it for good. Aborting a closed
            # transport does nothing.
            self._socket.transport.abort()

    def _flush(self) -> None:
        self._dropped.flush()
        self._unreadable.flush()


def _reason(closed: ConnectionClosed) -> CloseReason:
    """A normal close may mean the call ended; 4404 that it is unknown; else it dropped."""
    received = closed.rcvd
    if received is None:
        return "dropped"
    if received.code == CLOSE_UNKNOWN_CALL:
        return "unknown_call"
    return "ended" if received.code == CloseCode.NORMAL_CLOSURE else "dropped"


def _detail(closed: ConnectionClosed) -> str:
    """The close codes, for the log line (the close reason text is the peer's: left out)."""
    received, sent = closed.rcvd, closed.sent
    if received is not None:
        return f"closed {received.code}"
    return f"closed by us {sent.code}" if sent is not None else "connection lost"
