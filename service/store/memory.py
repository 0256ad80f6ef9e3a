"""The in-process store: exact for one process, swept so that it stays bounded.

The event loop serialises every call, so each method is atomic as the Redis
store's scripts are. Time is the injected `clock` (tests pass their own and
move it, instead of waiting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from service.core.clock import DAY_MS, Clock, wall_ms
from service.store.base import Limit, evaluate_gcra, held_key


class MemoryStore:
    """Every interface of `service.store.Store`, in this process's memory."""

    SWEEP_EVERY = 10_000

    def __init__(self, clock: Clock = wall_ms) -> None:
        self._clock = clock
        self._values: dict[str, tuple[float, int]] = {}
        self._records: dict[str, tuple[str, int]] = {}
        self._counters: dict[str, tuple[int, int]] = {}
        self._slots: dict[str, dict[str, int]] = {}
        self._leases: dict[str, tuple[str, int]] = {}
        self._ops = 0

    # Rates.

    async def hit(self, limits: Sequence[Limit]) -> tuple[int, list[tuple[int, int]]]:
        now_ms = self._clock()
        self._sweep(now_ms)
        retry, results, updates = 0, [], []
        for limit in limits:
            value, expires = self._values.get(limit.key, (0.0, 0))
            if expires <= now_ms:
                value = 0.0
            if limit.kind == "rate":
                wait, remaining, new_tat = evaluate_gcra(
                    value, now_ms, limit.count, limit.period_ms
                )
                updates.append((limit.key, (new_tat, math.ceil(new_tat))))
                results.append((remaining, math.ceil(new_tat - now_ms)))
            else:
                period = DAY_MS - now_ms % DAY_MS  # the rest of the UTC day
                wait = period if value >= limit.count else 0
                updates.append((limit.key, (value + 1, now_ms + period)))
                results.append((max(0, limit.count - int(value) - 1), period))
            retry = max(retry, wait)
        if retry == 0:
            self._values.update(updates)
        return retry, results

    def _sweep(self, now_ms: int) -> None:
        self._ops += 1
        if self._ops % self.SWEEP_EVERY == 0:
            self._values = {k: v for k, v in self._values.items() if v[1] > now_ms}
            self._records = {k: v for k, v in self._records.items() if v[1] > now_ms}
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now_ms}

    # Records.

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        now_ms = self._clock()
        self._sweep(now_ms)
        self._records[key] = (value, now_ms + ttl_ms)

    async def put_if_absent(self, key: str, value: str, ttl_ms: int) -> bool:
        now_ms = self._clock()
        if self._records.get(key, ("", 0))[1] > now_ms:
            return False
        await self.put(key, value, ttl_ms)
        return True

    async def get(self, key: str) -> str | None:
        value, expires = self._records.get(key, ("", 0))
        return value if expires > self._clock() else None

    async def delete(self, key: str) -> None:
        self._records.pop(key, None)

    async def update_existing(self, values: Mapping[str, str], ttl_ms: int) -> None:
        now_ms = self._clock()
        for key, value in values.items():
            if self._records.get(key, ("", 0))[1] > now_ms:
                self._records[key] = (value, now_ms + ttl_ms)

    async def missing(self, keys: Sequence[str]) -> list[str]:
        now_ms = self._clock()
        return [key for key in keys if self._records.get(key, ("", 0))[1] <= now_ms]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(key) for key in keys]

    # Counters.

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        now_ms = self._clock()
        totals = {}
        for key, amount in increments.items():
            value, expires = self._counters.get(key, (0, 0))
            if expires <= now_ms:
                value, expires = 0, now_ms + ttl_ms
            self._counters[key] = (value + amount, expires)
            totals[key] = value + amount
        return totals

    async def counts(self, keys: Sequence[str]) -> list[int]:
        now_ms = self._clock()
        found = (self._counters.get(key, (0, 0)) for key in keys)
        return [value if expires > now_ms else 0 for value, expires in found]

    async def hold(
        self, checks: Sequence[tuple[str, int]], holds: Mapping[str, int], ttl_ms: int
    ) -> str | None:
        for key, limit in checks:
            spent, held = await self.counts([key, held_key(key)])
            if spent + max(0, held) >= limit:
                return key
        for key in holds:
            value, expires = self._counters.get(key, (0, 0))
            if value < 0:
                self._counters[key] = (0, expires)
        await self.add(holds, ttl_ms)
        return None

    # Slots.

    async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
        members = self._live(key)
        if member not in members and len(members) >= limit:
            return False
        members[member] = self._clock() + ttl_ms
        self._slots[key] = members
        return True

    async def unreserve(self, key: str, member: str) -> None:
        members = self._live(key)
        if members.pop(member, None) is not None and not members:
            self._slots.pop(key, None)

    async def restore(self, key: str, member: str, ttl_ms: int) -> None:
        members = self._live(key)
        members.setdefault(member, self._clock() + ttl_ms)
        self._slots[key] = members

    async def occupancy(self, key: str) -> int:
        return len(self._live(key))

    async def members(self, key: str) -> list[str]:
        return list(self._live(key))

    def _live(self, key: str) -> dict[str, int]:
        """The key's unexpired members; an emptied key is dropped (no growth per caller)."""
        now_ms = self._clock()
        members = {m: at for m, at in self._slots.get(key, {}).items() if at > now_ms}
        if members:
            self._slots[key] = members
        else:
            self._slots.pop(key, None)
        return members

    # Leases.

    async def claim(self, member: str, owner: str, ttl_ms: int) -> bool:
        now_ms = self._clock()
        holder, expires = self._leases.get(member, ("", 0))
        if holder not in ("", owner) and expires > now_ms:
            return False
        self._leases[member] = (owner, now_ms + ttl_ms)
        return True

    async def renew(self, members: Sequence[str], owner: str, ttl_ms: int) -> list[str]:
        now_ms = self._clock()
        lost = []
        for member in members:
            if self._leases.get(member, ("", 0))[0] in (owner, ""):
                self._leases[member] = (owner, now_ms + ttl_ms)
            else:
                lost.append(member)
        return lost

    async def release(self, members: Sequence[str], owner: str) -> None:
        for member in members:
            if self._leases.get(member, ("", 0))[0] == owner:
                self._leases[member] = (owner, 0)

    async def drop(self, member: str) -> None:
        self._leases.pop(member, None)

    async def orphans(self, limit: int) -> list[str]:
        now_ms = self._clock()
        return [m for m, (_, expires) in self._leases.items() if expires <= now_ms][:limit]

    # Health.

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
