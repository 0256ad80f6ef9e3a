"""The emulator's sideband in process: a call's server events without a socket.

A service that runs the emulator in its own process reaches it through
`httpx.ASGITransport`, where there is no socket for a WebSocket; its
supervisor attaches through `EmulatorSideband(registry)` instead. The
emulator's own WebSocket sidebands (`http.py`) are this same connection
behind a socket, so both behave alike:

- `recv()` yields every server event of the call from the moment of
  attaching, in order, and raises `SidebandEnded(CLOSE_NORMAL)` once the call
  has ended and its last events (Live's `session.closed`) are delivered;
- `send(event)` applies a client event as trusted (no Live allow-list);
- `connect` raises `SidebandEnded(CLOSE_UNKNOWN_CALL)` for a call that is not
  open or is of the other kind, as OpenAI's 404 / close code 4404 does.

`SidebandEnded.code` is the close code OpenAI's WebSocket would carry, or
None once this side has detached: a caller translates it as it would the
socket's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from emulator.calls.base import BaseCall
from emulator.calls.errors import UnknownCall
from emulator.calls.events import CallKind, Event
from emulator.calls.registry import CallRegistry

CLOSE_NORMAL = 1000
"""The close code of a sideband whose call has ended (RFC 6455's normal closure)."""
CLOSE_UNKNOWN_CALL = 4404
"""OpenAI's close code for a sideband to a call it does not hold."""


class SidebandEnded(Exception):
    """The sideband is over: `code` as OpenAI's socket would close it, None if detached here."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


class EmulatorSidebandConnection:
    """One attached sideband: a subscription to the call's events, and trusted client events."""

    def __init__(self, registry: CallRegistry, call: BaseCall) -> None:
        self.call_id = call.call_id
        self._registry = registry
        self._call = call
        self._queue: asyncio.Queue[Event] = call.subscribe()
        self._detached = False

    def _gone(self) -> SidebandEnded:
        return SidebandEnded(CLOSE_NORMAL if self._call.closed else None)

    async def recv(self) -> dict[str, Any]:
        """The next server event; `SidebandEnded(CLOSE_NORMAL)` once the call is over, drained."""
        queue = self._queue
        while True:
            if self._detached:
                raise self._gone()
            if not queue.empty():
                return queue.get_nowait()
            if self._call.closed:
                raise SidebandEnded(CLOSE_NORMAL)
            # Wait for an event or the call's end, whichever first: no polling,
            # so thousands of idle sidebands cost nothing.
            getter = asyncio.ensure_future(queue.get())
            ender = asyncio.ensure_future(self._call.wait_closed())
            try:
                await asyncio.wait((getter, ender), return_when=asyncio.FIRST_COMPLETED)
            finally:
                ender.cancel()
                if not getter.done():
                    getter.cancel()  # a cancelled get leaves its item in the queue
            if getter.done() and not getter.cancelled():
                return getter.result()

    def apply(self, event: object) -> None:
        """Apply a client event, trusted; one that is not an event gets the call's `error`."""
        if self._detached:
            raise self._gone()
        try:
            self._registry.send_client_event(self.call_id, event, trusted=True)
        except UnknownCall:
            raise SidebandEnded(CLOSE_NORMAL) from None

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send a client event, trusted; `SidebandEnded(CLOSE_NORMAL)` if the call is over."""
        self.apply(event)

    async def close(self) -> None:
        """Detach: no more events are delivered here; the call goes on."""
        self._detached = True
        self._call.unsubscribe(self._queue)


class EmulatorSideband:
    """Opens in-process sidebands to the calls of one emulator's registry."""

    def __init__(self, registry: CallRegistry) -> None:
        self.registry = registry

    async def connect(self, kind: CallKind, call_id: str) -> EmulatorSidebandConnection:
        """Attach to an open call of this kind; `SidebandEnded(CLOSE_UNKNOWN_CALL)` otherwise."""
        try:
            call = self.registry.get(call_id)
        except UnknownCall:
            raise SidebandEnded(CLOSE_UNKNOWN_CALL) from None
        if call.kind != kind:
            raise SidebandEnded(CLOSE_UNKNOWN_CALL)
        return EmulatorSidebandConnection(self.registry, call)
