"""The shared store's call state, the same on both stores: records, counters, slots, leases.

What supervision keeps across workers and replicas (`service.calls`): call
records, usage counters per identity and day, live-call slots per identity,
and the lease that says which worker supervises which call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import pytest

from service.store import Store
from service.store.memory import MemoryStore
from service.store.redis import RedisStore
from tests.clocks import FakeClock, wait_for_redis_time
from tests.servers import redis_server

pytestmark = pytest.mark.anyio
Elapse = Callable[[int], Awaitable[None]]
"""Lets that many milliseconds pass on the store's clock."""


@dataclass(frozen=True, slots=True)
class Backend:
    """A store, and how to let time pass on the clock it expires things by."""

    store: Store
    elapse: Elapse


@pytest.fixture(name="backend", params=["memory", "redis"])
async def fixture_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The memory store on a fake clock (moved at once); Redis on its own (waited for)."""
    if request.param == "memory":
        clock = FakeClock()

        async def advance(ms: int) -> None:
            clock.advance(ms)

        yield Backend(MemoryStore(clock), advance)
        return
    with redis_server() as server:
        store = RedisStore(server.url, 2.0)
        try:
            yield Backend(store, partial(wait_for_redis_time, server.url))
        finally:
            await store.aclose()


@pytest.fixture(name="store")
def fixture_store(backend: Backend) -> Store:
    """Each store: process memory, and a real Redis."""
    return backend.store


@pytest.fixture(name="elapse")
def fixture_elapse(backend: Backend) -> Elapse:
    """Time passing for that store."""
    return backend.elapse


class TestRecords:
    async def test_update_existing_overwrites_only_what_is_there(self, store: Store) -> None:
        """Held keys take the new values; a key never written (or deleted) stays absent."""
        await store.put("r:held", "old", 60_000)
        await store.put("r:ended", "old", 60_000)
        await store.delete("r:ended")
        await store.update_existing({"r:held": "new", "r:ended": "new", "r:never": "new"}, 60_000)
        assert await store.get("r:held") == "new"
        assert await store.missing(["r:held", "r:ended", "r:never"]) == ["r:ended", "r:never"]

    async def test_update_existing_renews_the_ttl(self, store: Store, elapse: Elapse) -> None:
        """An updated record lives `ttl_ms` from the update, like a put."""
        await store.put("r:renewed", "old", 100)
        await store.update_existing({"r:renewed": "new"}, 60_000)
        await elapse(150)
        assert await store.get("r:renewed") == "new"

    async def test_put_if_absent_writes_only_once(self, store: Store) -> None:
        """Of two writers of one key the first wins; the second leaves its value be."""
        assert await store.put_if_absent("r:new", "first", 60_000)
        assert not await store.put_if_absent("r:new", "second", 60_000)
        assert await store.get("r:new") == "first"

    async def test_put_if_absent_writes_over_an_expired_value(
        self, store: Store, elapse: Elapse
    ) -> None:
        """An expired value is no value: the key is written again."""
        await store.put("r:old", "gone", 100)
        await elapse(150)
        assert await store.put_if_absent("r:old", "new", 60_000)
        assert await store.get("r:old") == "new"


class TestCancellation:
    """A task cancelled while a Redis command runs is cancelled, whatever the command did."""

    @pytest.mark.parametrize("steps", [0, 1, 2, 3])
    async def test_a_cancelled_command_raises_the_cancellation(self, steps: int) -> None:
        """Cancelled `steps` turns of the loop into a command: on Python 3.11 redis-py's
        write, done in the same turn as the cancel, swallowed it and returned the value."""
        with redis_server() as server:
            store = RedisStore(server.url, 2.0)
            try:
                await store.put("k", "v", 60_000)
                task = asyncio.create_task(store.get("k"))
                for _ in range(steps):
                    await asyncio.sleep(0)
                assert not task.done()  # cancelled mid-command, not after it
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                await store.aclose()


class TestCounters:
    async def test_add_returns_totals_and_counts_read_them(self, store: Store) -> None:
        """Increments accumulate per key; a key never set counts 0."""
        assert await store.add({"t:a": 5, "t:b": 2}, 60_000) == {"t:a": 5, "t:b": 2}
        assert await store.add({"t:a": 3}, 60_000) == {"t:a": 8}
        assert await store.counts(["t:a", "t:b", "t:none"]) == [8, 2, 0]

    async def test_counters_expire(self, store: Store, elapse: Elapse) -> None:
        """A counter lives `ttl_ms` from its creation (a day's usage ends with the day)."""
        await store.add({"t:short": 1}, 50)
        await elapse(120)
        assert await store.counts(["t:short"]) == [0]


class TestHolds:
    async def test_hold_adds_while_spent_and_held_are_under_the_limit(self, store: Store) -> None:
        """A check passes while spent + held < limit; the holds are then added."""
        await store.add({"h:a": 990}, 60_000)
        assert await store.hold([("h:a", 1000)], {"h:a:held": 4096}, 60_000) is None
        assert await store.counts(["h:a", "h:a:held"]) == [990, 4096]

    async def test_hold_refuses_on_reservations_and_changes_nothing(self, store: Store) -> None:
        """Reservations count against the limit: a refusal names its key and adds nothing."""
        await store.add({"h:a": 990}, 60_000)
        await store.hold([("h:a", 1000)], {"h:a:held": 10}, 60_000)
        refused = await store.hold(
            [("h:b", 5), ("h:a", 1000)], {"h:b:held": 1, "h:a:held": 10}, 60_000
        )
        assert refused == "h:a"
        assert await store.counts(["h:a:held", "h:b:held"]) == [10, 0]

    async def test_a_negative_reservation_counts_as_none(self, store: Store) -> None:
        """A reservation counter below 0 (the store lost holds) counts as none, and a new
        hold starts from 0: it never widens a budget."""
        await store.add({"h:a": 990, "h:a:held": -500}, 60_000)
        assert await store.hold([("h:a", 1000)], {"h:a:held": 5}, 60_000) is None
        assert await store.counts(["h:a:held"]) == [5]
        assert await store.hold([("h:a", 1000)], {"h:a:held": 5}, 60_000) is None
        assert await store.hold([("h:a", 1000)], {}, 60_000) == "h:a"


class TestSlots:
    async def test_reserve_up_to_the_limit(self, store: Store) -> None:
        """The limit-th member is refused; freeing one admits the next."""
        assert await store.reserve("s:id", "a", 2, 60_000)
        assert await store.reserve("s:id", "b", 2, 60_000)
        assert not await store.reserve("s:id", "c", 2, 60_000)
        assert await store.occupancy("s:id") == 2
        await store.unreserve("s:id", "a")
        assert await store.reserve("s:id", "c", 2, 60_000)

    async def test_expired_members_free_their_slot(self, store: Store, elapse: Elapse) -> None:
        """A member past its expiry (a call that cannot still be live) stops counting."""
        assert await store.reserve("s:exp", "old", 1, 50)
        await elapse(120)
        assert await store.occupancy("s:exp") == 0
        assert await store.reserve("s:exp", "new", 1, 60_000)

    async def test_members_lists_the_live_ones(self, store: Store, elapse: Elapse) -> None:
        """`members` names every live member once, and none that expired."""
        await store.restore("s:idx", "a", 60_000)
        await store.restore("s:idx", "b", 60_000)
        await store.restore("s:idx", "a", 60_000)
        await store.restore("s:idx", "gone", 50)
        await elapse(120)
        assert sorted(await store.members("s:idx")) == ["a", "b"]


class TestLeases:
    async def test_one_owner_at_a_time(self, store: Store) -> None:
        """A live lease refuses another owner; its own owner may claim it again."""
        assert await store.claim("call-1", "w1", 10_000)
        assert not await store.claim("call-1", "w2", 10_000)
        assert await store.claim("call-1", "w1", 10_000)

    async def test_expired_lease_is_an_orphan_and_can_be_taken(
        self, store: Store, elapse: Elapse
    ) -> None:
        """An unrenewed lease expires: the call is listed as an orphan and w2 takes it."""
        assert await store.claim("call-2", "w1", 50)
        await elapse(120)
        assert "call-2" in await store.orphans(100)
        assert await store.claim("call-2", "w2", 10_000)
        assert await store.renew(["call-2"], "w1", 10_000) == ["call-2"]

    async def test_renew_keeps_and_reports_lost(self, store: Store, elapse: Elapse) -> None:
        """Renewal extends the owner's leases and names the ones it no longer holds."""
        await store.claim("call-3", "w1", 100)
        await store.claim("call-4", "w2", 10_000)
        assert await store.renew(["call-3", "call-4"], "w1", 10_000) == ["call-4"]
        await elapse(150)
        assert "call-3" not in await store.orphans(100)

    async def test_renew_takes_a_lease_never_written(self, store: Store) -> None:
        """A call whose claim failed (store down) gets its lease at the next renewal."""
        assert await store.renew(["call-7"], "w1", 10_000) == []
        assert not await store.claim("call-7", "w2", 10_000)

    async def test_release_hands_over_at_once(self, store: Store) -> None:
        """Released leases are orphans now, not after their expiry."""
        await store.claim("call-5", "w1", 60_000)
        await store.release(["call-5"], "w2")  # not w2's: unchanged
        assert "call-5" not in await store.orphans(100)
        await store.release(["call-5"], "w1")
        assert "call-5" in await store.orphans(100)

    async def test_drop_forgets_the_call(self, store: Store, elapse: Elapse) -> None:
        """A dropped lease (the call ended) is never an orphan again."""
        await store.claim("call-6", "w1", 50)
        await store.drop("call-6")
        await elapse(120)
        assert "call-6" not in await store.orphans(100)
