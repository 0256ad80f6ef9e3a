"""The emulator's sideband in process: `Sideband` without a socket.

With `UPSTREAM_EMULATOR=true` the service reaches the emulator through
`httpx.ASGITransport`, where there is no socket for a WebSocket; the
supervisor then attaches through `EmulatorSideband(registry)` instead. The
emulator's own WebSocket sidebands (`http.py`) are this same connection
behind a socket, so both behave alike:

- `recv()` yields every server event of the call from the moment of
  attaching, in order, and raises `SidebandClosed("ended")` once the call has
  ended and its last events (Live's `session.closed`) are delivered;
- `send(event)` applies a client event as trusted (no Live allow-list);
- `connect` raises `SidebandClosed("unknown_call")` for a call that is not
  open or is of the other kind, as OpenAI's 404 / close code 4404 does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from emulator.calls.base import BaseCall
from emulator.calls.errors import UnknownCall
from emulator.calls.events import Event
from emulator.calls.registry import CallRegistry
from service.contract.calls import CallKind
from service.upstream.sideband import SidebandClosed


class EmulatorSidebandConnection:
    """One attached sideband: a subscription to the call's events, and trusted client events."""

    def __init__(self, registry: CallRegistry, call: BaseCall) -> None:
        self.call_id = call.call_id
        self._registry = registry
        self._call = call
        self._queue: asyncio.Queue[Event] = call.subscribe()
        self._detached = False

    def _gone(self) -> SidebandClosed:
        return SidebandClosed("ended" if self._call.closed else "dropped")

    async def recv(self) -> dict[str, Any]:
        """The next server event; `SidebandClosed("ended")` once the call is over and drained."""
        queue = self._queue
        while True:
            if self._detached:
                raise self._gone()
            if not queue.empty():
                return queue.get_nowait()
            if self._call.closed:
                raise SidebandClosed("ended")
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
            raise SidebandClosed("ended") from None

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send a client event, trusted; `SidebandClosed("ended")` if the call is over."""
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
        """Attach to an open call of this kind; `SidebandClosed("unknown_call")` otherwise."""
        try:
            call = self.registry.get(call_id)
        except UnknownCall:
            raise SidebandClosed("unknown_call") from None
        if call.kind != kind:
            raise SidebandClosed("unknown_call")
        return EmulatorSidebandConnection(self.registry, call)
