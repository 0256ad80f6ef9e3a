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

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

from service.contract.calls import CallKind

log = structlog.get_logger("service.sideband")

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

    def __init__(self, base_url: str, key_headers: Mapping[str, str]) -> None:
        self._base_url = base_url
        self._headers = dict(key_headers)

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
            log.warning("sideband_refused", kind=kind, call_id=call_id, upstream_status=status)
            raise SidebandClosed("dropped") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as failed:
            log.warning(
                "sideband_unreachable", kind=kind, call_id=call_id, error=type(failed).__name__
            )
            raise SidebandClosed("dropped") from None
        return _WebSocketConnection(socket)


class _WebSocketConnection:
    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket

    async def recv(self) -> dict[str, Any]:
        while True:
            try:
                message = await self._socket.recv()
            except ConnectionClosed as closed:
                raise SidebandClosed(_reason(closed)) from None
            try:
                event = orjson.loads(message)
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                return event
            log.warning("sideband_unreadable_event", size=len(message))

    async def send(self, event: Mapping[str, Any]) -> None:
        try:
            await self._socket.send(orjson.dumps(event).decode())
        except ConnectionClosed as closed:
            raise SidebandClosed(_reason(closed)) from None

    async def close(self) -> None:
        await self._socket.close()


def _reason(closed: ConnectionClosed) -> CloseReason:
    """A normal close means the call ended; 4404 that it never existed; else it dropped."""
    received = closed.rcvd
    if received is None:
        return "dropped"
    if received.code == CLOSE_UNKNOWN_CALL:
        return "unknown_call"
    return "ended" if received.code == CloseCode.NORMAL_CLOSURE else "dropped"
