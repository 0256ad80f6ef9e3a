"""The supervisor's parts on their own: records, the keeper's hand-over, admission.

The store is the real in-process one, on a clock the tests move; where a
test needs the store to fail, a subclass fails the one interface named.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from service.calls.admission import Admission
from service.calls.keeper import Keeper
from service.calls.records import CallRecord, CallRecords, Override, owner_of
from service.calls.state import noted, settled
from service.calls.usage import UsageKeys
from service.calls.watched import Watched
from service.core.clock import DAY_MS, day_of
from service.core.errors import RateLimited
from service.store import MemoryStore, StoreUnavailable
from tests.conftest import MakeSettings

pytestmark = pytest.mark.anyio
WORKER = "worker-a"


class Clock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class CountersDown(MemoryStore):
    """A store whose counters fail: metering at shutdown cannot be written."""

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        raise StoreUnavailable("ConnectionError")


class RecordsDown(MemoryStore):
    """A store whose records fail: counted seconds cannot be passed on."""

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        raise StoreUnavailable("ConnectionError")


def record(kind: str = "live", call_id: str = "sess_1", identity: str = "alice") -> CallRecord:
    return CallRecord(
        kind="live" if kind == "live" else "realtime",
        call_id=call_id,
        owner=owner_of(identity),
        caller=identity,
        started_ms=0,
        deadline_ms=10**15,
    )


class TestRecords:
    """What a call record holds."""

    async def test_record_holds_the_owner_hash_not_the_identity(self) -> None:
        """The stored record names its creator by hash only; the owner is found by it."""
        store = MemoryStore(Clock())
        records = CallRecords(store)
        call = record(identity="alice@example.com")
        call.caller = owner_of("alice@example.com")  # AUTH_HASH_IDENTITIES: the tag is a hash
        await records.record(call)
        raw = await store.get("rtp:call:live:sess_1")
        assert raw is not None
        assert "alice@example.com" not in raw
        found = await records.get("live", "sess_1")
        assert found is not None
        assert found.owner == owner_of("alice@example.com")

    async def test_a_record_written_with_the_identity_is_read_as_its_hash(self) -> None:
        """A record from before the hash (it held `identity`) still names its owner."""
        old = (
            '{"kind":"realtime","call_id":"rtc_1","identity":"bob","started_ms":0,'
            '"deadline_ms":1,"fixed":{},"slot":null,"counted_seconds":null}'
        )
        loaded = CallRecord.loads(old)
        assert loaded is not None
        assert loaded.owner == owner_of("bob")
        assert "bob" not in loaded.dumps()

    async def test_fields_of_a_newer_version_are_left_out(self) -> None:
        """A record a newer version wrote, with a field this one lacks, is still read."""
        newer = record().dumps().replace('"tokens":0', '"tokens":0,"from_the_future":1')
        loaded = CallRecord.loads(newer)
        assert loaded is not None
        assert loaded.call_id == "sess_1"

    async def test_overrides_and_usage_are_kept(self) -> None:
        """What the supervisor did, and the usage, survive the store's round trip."""
        call = record()
        noted(call, ["delegation"], 5, "reverting")
        settled(call, [], 17)
        call.usage_seconds = 45.0
        loaded = CallRecord.loads(call.dumps())
        assert loaded is not None
        assert loaded.overrides == [Override("delegation", 5, "reverted", 12)]
        assert loaded.usage_seconds == 45.0


class TestHandOver:
    """At shutdown every lease is released, whatever else the store refuses."""

    @pytest.mark.parametrize("store_class", [CountersDown, RecordsDown])
    async def test_leases_are_released_when_another_write_fails(
        self, make_settings: MakeSettings, store_class: type[MemoryStore]
    ) -> None:
        """A failed usage or record write does not keep the call's lease held until it expires."""
        clock = Clock()
        store = store_class(clock)
        keeper = Keeper(make_settings(), store, store, store, CallRecords(store), WORKER, clock)
        call = Watched(record(), clock(), unmetered_ms=5_000, live_seconds=12.0)
        await keeper.hold(call.record)
        assert await store.orphans(10) == []
        await keeper.hand_over([call])
        assert await store.orphans(10) == [call.record.member]

    async def test_counted_seconds_are_passed_on(self, make_settings: MakeSettings) -> None:
        """A GPT-Live call's counted seconds reach its record, for the adopting worker."""
        clock = Clock()
        store = MemoryStore(clock)
        records = CallRecords(store)
        keeper = Keeper(make_settings(), store, store, store, records, WORKER, clock)
        call = Watched(record(), clock(), live_seconds=42.0)
        await keeper.hand_over([call])
        found = await records.get("live", "sess_1")
        assert found is not None
        assert found.counted_seconds == 42.0


class TestKeeper:
    """A pass's findings."""

    async def test_meter_names_calls_over_the_seconds_quota(
        self, make_settings: MakeSettings
    ) -> None:
        """The seconds since the last pass are written; a caller at the quota is returned."""
        clock = Clock()
        store = MemoryStore(clock)
        keeper = Keeper(
            make_settings(quota_call_seconds_per_day=60),
            store,
            store,
            store,
            CallRecords(store),
            WORKER,
            clock,
        )
        call = Watched(record(kind="realtime", call_id="rtc_1"), clock())
        clock.now_ms += 59_000
        assert (await keeper.meter([call])).over_quota == []
        clock.now_ms += 1_000
        assert (await keeper.meter([call])).over_quota == [call]

    async def test_renew_restores_a_lost_record_and_slot(self, make_settings: MakeSettings) -> None:
        """A live call whose record and slot the store lost has both back after one pass."""
        clock = Clock()
        store = MemoryStore(clock)
        records = CallRecords(store)
        keeper = Keeper(make_settings(), store, store, store, records, WORKER, clock)
        call = Watched(record(), clock())
        call.record.slot = "slot-1"
        slots = UsageKeys(call.record.owner, "").slots
        assert await store.occupancy(slots) == 0
        assert await keeper.renew([call]) == []
        assert await records.get("live", "sess_1") == call.record
        assert await store.occupancy(slots) == 1
        assert await keeper.renew([call]) == []  # nothing missing: nothing written twice
        assert await store.occupancy(slots) == 1

    async def test_lost_lease_is_reported(self, make_settings: MakeSettings) -> None:
        """A call whose lease another worker holds comes back from `renew`."""
        clock = Clock()
        store = MemoryStore(clock)
        keeper = Keeper(make_settings(), store, store, store, CallRecords(store), WORKER, clock)
        call = Watched(record(), clock())
        assert await store.claim(call.record.member, "worker-b", 10_000)
        assert await keeper.renew([call]) == [call]

    async def test_orphan_is_claimed_with_its_record(self, make_settings: MakeSettings) -> None:
        """An expired lease is taken, and the call's record read for adoption."""
        clock = Clock()
        store = MemoryStore(clock)
        records = CallRecords(store)
        orphan = record()
        await records.record(orphan)
        assert await store.claim(orphan.member, "worker-b", 10_000)
        keeper = Keeper(make_settings(), store, store, store, records, WORKER, clock)
        assert await keeper.orphans(set()) == []
        clock.now_ms += 10_001
        [adopted] = await keeper.orphans(set())
        assert adopted.call_id == orphan.call_id


class TestAdmission:
    """Budgets and slots before a call is created."""

    async def test_slots_hold_the_cap_and_come_back(self, make_settings: MakeSettings) -> None:
        """At the cap one more call is refused; a slot given back admits the next."""
        clock = Clock()
        store = MemoryStore(clock)
        admission = Admission(
            make_settings(calls_max_concurrent_per_identity=1), store, store, clock
        )
        slot = (await admission.admit(owner_of("alice"), "realtime")).slot
        with pytest.raises(RateLimited) as refused:
            await admission.admit(owner_of("alice"), "realtime")
        assert refused.value.code == "too_many_calls"
        await admission.give_back(owner_of("alice"), slot)
        assert (await admission.admit(owner_of("alice"), "realtime")).slot is not None

    async def test_store_down_is_the_503_unless_open(self, make_settings: MakeSettings) -> None:
        """With the store down, admission raises StoreUnavailable (closed) or admits, the slot
        owed (open)."""

        class SlotsDown(MemoryStore):
            async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
                raise StoreUnavailable("TimeoutError")

        clock = Clock()
        store = SlotsDown(clock)
        closed = make_settings(calls_max_concurrent_per_identity=1)
        with pytest.raises(StoreUnavailable) as down:
            await Admission(closed, store, store, clock).admit(owner_of("alice"), "live")
        assert down.value.status_code == 503
        opened = make_settings(
            calls_max_concurrent_per_identity=1, rate_limit_on_store_error="open"
        )
        admitted = await Admission(opened, store, store, clock).admit(owner_of("a"), "live")
        assert admitted.owed
        assert admitted.slot is not None

    async def test_quota_refusal_retries_at_midnight(self, make_settings: MakeSettings) -> None:
        """A spent day's budget is 429 `quota_exceeded`, Retry-After until 00:00 UTC."""
        day_start = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS
        clock = Clock(now_ms=day_start + DAY_MS - 10_000)
        store = MemoryStore(clock)
        spent = UsageKeys(owner_of("alice"), day_of(clock())).seconds
        await store.add({spent: 100}, DAY_MS)
        admission = Admission(make_settings(quota_call_seconds_per_day=100), store, store, clock)
        with pytest.raises(RateLimited) as refused:
            await admission.admit(owner_of("alice"), "realtime")
        assert refused.value.code == "quota_exceeded"
        assert refused.value.headers["Retry-After"] == "10"
