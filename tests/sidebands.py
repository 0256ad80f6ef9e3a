"""A scripted sideband for tests: the supervisor's view of calls, driven by the test.

`ScriptedSideband` meets the `Sideband` protocol. By default a call's
sideband is quiet (nothing happens until the test says so); tests emit
server events into a call, drop or end its sideband, and read what the
supervisor sent back.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from service.contract.calls import CallKind
from service.upstream.sideband import CloseReason, SidebandClosed, SidebandConnection


class ScriptedConnection:
    """One attached sideband: events in from the test, client events out to it."""

    def __init__(self, owner: ScriptedSideband, call_id: str) -> None:
        self._owner = owner
        self._call_id = call_id
        self.inbox: asyncio.Queue[dict[str, Any] | CloseReason] = asyncio.Queue()
        self.closed = False

    async def recv(self) -> dict[str, Any]:
        item = await self.inbox.get()
        if isinstance(item, str):
            self.closed = True
            raise SidebandClosed(item)
        return item

    async def send(self, event: Mapping[str, Any]) -> None:
        if self.closed:
            raise SidebandClosed("dropped")
        self._owner.sent[self._call_id].append(dict(event))
        self._owner.changed.set()

    async def close(self) -> None:
        self.closed = True


class ScriptedSideband:
    """Every call's sideband, as the test scripts it."""

    def __init__(self) -> None:
        self.connections: dict[str, list[ScriptedConnection]] = defaultdict(list)
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.unknown: set[str] = set()
        self.changed = asyncio.Event()

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        if call_id in self.unknown:
            raise SidebandClosed("unknown_call")
        connection = ScriptedConnection(self, call_id)
        self.connections[call_id].append(connection)
        self.changed.set()
        return connection

    def current(self, call_id: str) -> ScriptedConnection:
        return self.connections[call_id][-1]

    async def attached(self, call_id: str, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until the supervisor has attached `count` times to the call."""
        await self.until(lambda: len(self.connections[call_id]) >= count, timeout)

    async def until(self, condition: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                try:
                    async with asyncio.timeout(0.05):
                        await self.changed.wait()
                except TimeoutError:
                    pass

    def emit(self, call_id: str, event: dict[str, Any]) -> None:
        """A server event on the call's current sideband."""
        self.current(call_id).inbox.put_nowait(event)

    def close(self, call_id: str, reason: CloseReason) -> None:
        """The call's sideband closes: `ended` (the call is over) or `dropped`."""
        if reason == "unknown_call" or reason == "ended":
            self.unknown.add(call_id)
        self.current(call_id).inbox.put_nowait(reason)
