"""Coalesced usage writes: every event's increments written once, many events per round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from service.calls.batching import CoalescedCounters
from service.store import MemoryStore, StoreUnavailable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class GatedCounters(MemoryStore):
    """The memory store, whose writes wait for the test to let each one through."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[dict[str, int]] = []
        self.gate = asyncio.Event()
        self.fail = False
        self.entered = asyncio.Event()

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        self.writes.append(dict(increments))
        self.entered.set()
        await self.gate.wait()
        if self.fail:
            raise StoreUnavailable("TimeoutError")
        return await super().add(increments, ttl_ms)


class TestCoalescing:
    """Events that arrive while a write is in flight go together in the next one."""

    async def test_events_during_a_write_share_the_next_one(self) -> None:
        """One write in flight; three more events make one second write; totals for each."""
        store = GatedCounters()
        writes = CoalescedCounters(store, 60_000, linger_s=0)
        first = asyncio.create_task(writes.add({"a": 1}))
        await store.entered.wait()
        rest = [asyncio.create_task(writes.add({"a": 2, "b": n})) for n in (1, 2, 3)]
        await asyncio.sleep(0)  # the three join the pending batch
        store.gate.set()
        assert (await first)["a"] == 1
        totals = await asyncio.gather(*rest)
        assert store.writes == [{"a": 1}, {"a": 6, "b": 6}]
        assert all(total == {"a": 7, "b": 6} for total in totals)

    async def test_a_failed_write_fails_each_of_its_events_and_counts_nothing(self) -> None:
        """StoreUnavailable reaches every event of the write; the store holds none of it."""
        store = GatedCounters()
        store.fail = True
        store.gate.set()
        writes = CoalescedCounters(store, 60_000, linger_s=0)
        results = await asyncio.gather(
            writes.add({"a": 1}), writes.add({"a": 2}), return_exceptions=True
        )
        assert all(isinstance(result, StoreUnavailable) for result in results)
        store.fail = False
        assert await store.counts(["a"]) == [0]

    async def test_a_cancelled_event_is_still_written_and_flush_waits_for_it(self) -> None:
        """A caller cancelled mid-write (a hand-over) loses nothing: `flush` sees it written."""
        store = GatedCounters()
        writes = CoalescedCounters(store, 60_000, linger_s=0)
        event = asyncio.create_task(writes.add({"a": 5}))
        await store.entered.wait()
        event.cancel()
        flushed = asyncio.create_task(writes.flush())
        await asyncio.sleep(0)
        assert not flushed.done()
        store.gate.set()
        await flushed
        assert await MemoryStore.counts(store, ["a"]) == [5]
