"""Usage writes of all of a worker's calls, coalesced into one store round trip at a time.

Each usage event (a response's tokens and dollars, a GPT-Live report's) is
written at once, so its budgets are checked against totals that include it.
One round trip per event does not scale: at 2,000 calls reporting every 5 s
(400 events a second) the round trips themselves cost a good part of a core
and, in bursts, outlast `REDIS_TIMEOUT_SECONDS`. So a worker writes its calls'
increments together: what arrives within `LINGER_S` of the first, and while a
write is in flight, goes in the next single `Counters.add`, and each waiting
event gets that write's totals. An event waits at most `LINGER_S` plus one
round trip; a write that fails fails each of its events, which keep their
usage for the keeper's next pass as before.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping

from service.store import Counters

LINGER_S = 0.02
"""How long a write waits for more events to join it: a budget decision comes at most this
much later, and 400 events a second take some 50 round trips instead of 400. The call's
next event is read that much later too, so it stays short: a `response.created` right
after a `response.done` must still be cancelled within 50 ms (docs/benchmark.md). A round
trip costs the worker ~100 µs of CPU whatever it carries (redis-py and the socket's system
calls, measured on the 2-core VM), each key ~3 µs more."""


class _Batch:
    def __init__(self) -> None:
        self.increments: defaultdict[str, int] = defaultdict(int)
        self.waiters: list[asyncio.Future[dict[str, int]]] = []


class CoalescedCounters:
    """`Counters.add` for many calls' usage events, one write at a time; one per worker."""

    def __init__(self, counters: Counters, ttl_ms: int, linger_s: float = LINGER_S) -> None:
        self._counters = counters
        self._ttl_ms = ttl_ms
        self._linger_s = linger_s
        self._next: _Batch | None = None
        self._writer: asyncio.Task[None] | None = None

    async def add(self, increments: Mapping[str, int]) -> dict[str, int]:
        """Add `increments` with the next write; the totals it returned (`StoreUnavailable`
        if it failed). A cancelled caller's increments are still written: they are in the
        batch, and only the caller's own waiter is cancelled."""
        batch = self._next
        if batch is None:
            batch = self._next = _Batch()
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write())
        for key, amount in increments.items():
            batch.increments[key] += amount
        # One future per event, not a shield: this runs for every usage event.
        waiter: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        batch.waiters.append(waiter)
        return await waiter

    async def _write(self) -> None:
        while self._next is not None:
            await asyncio.sleep(self._linger_s)
            batch, self._next = self._next, None
            if batch is None:
                return
            try:
                totals = await self._counters.add(batch.increments, self._ttl_ms)
            except Exception as failed:
                for waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_exception(failed)
            else:
                for waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_result(totals)

    async def flush(self) -> None:
        """Wait until what is pending is written (at a hand-over, before the leases go: the
        adopting worker counts on from what the store holds)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
