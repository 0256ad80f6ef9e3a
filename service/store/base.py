"""The shared state's interfaces, by use, and what every implementation shares.

Everything that every worker and replica must agree on lives in one store:
process memory (one process) or Redis (`REDIS_URL`). Its users need five
small things from it, one protocol each, so a user's signature says which:

- `Rates`: rate limits and daily quotas, checked and committed together
  (`service.limits`);
- `Counters`: usage per caller and day (`service.calls`);
- `Records`: short-lived values by key (call records);
- `Slots`: members that expire on their own, at most N per key (live calls);
- `Leases`: which worker supervises which call.

`Store` is all five (one connection pool serves them) plus health. Every key
expires, so nothing grows without bound. A store that cannot answer in time
raises `StoreUnavailable`, which is itself the caller's 503: no layer above
translates it.

GCRA (the generic cell rate algorithm) keeps one timestamp per key: a burst
of up to N, then one every period/N. `evaluate_gcra` is the reference
implementation; the memory store runs it and the Redis store's Lua script
mirrors it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from service.core.errors import ServiceUnavailable

Kind = Literal["rate", "quota"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit to check: a GCRA rate over `period_ms`, or a quota of `count` per UTC day."""

    key: str
    kind: Kind
    count: int
    period_ms: int = 0
    """A rate's period; a quota's period is the rest of the UTC day, on the store's clock."""


class StoreUnavailable(ServiceUnavailable):
    """The store could not answer in time: a 503 with `Retry-After`, rendered like any error.

    `reason` (the failure's class name) is for logs; the caller sees only that
    the shared store is unavailable.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            "The shared store is unavailable; retry shortly.", headers={"Retry-After": "1"}
        )
        self.reason = reason


class Rates(Protocol):
    """Rate limits and quotas, all of one request checked and committed atomically."""

    async def hit(self, limits: Sequence[Limit]) -> tuple[int, list[tuple[int, int]]]:
        """`(retry_after_ms, [(remaining, reset_ms), ...])`; retry 0 means allowed and counted.

        A request refused by one limit consumes none.
        """
        ...


class Counters(Protocol):
    """Counters that expire (usage per caller and day)."""

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        """Add to counters (created with `ttl_ms`); their new totals."""
        ...

    async def counts(self, keys: Sequence[str]) -> list[int]:
        """Current counter values (0 for a missing one)."""
        ...

    async def hold(
        self, checks: Sequence[tuple[str, int]], holds: Mapping[str, int], ttl_ms: int
    ) -> str | None:
        """Reserve against budgets, atomically: if for every `(key, limit)` of `checks` the
        counter plus its reservations (`held_key(key)`, never below 0) is under `limit`,
        add `holds` (counters created with `ttl_ms`; one below 0, whose holds the store
        lost, from 0) and return None; else change nothing and return the first key that
        refused.

        One operation, so concurrent admissions are ordered: each sees the reservations
        of those before it (`service.calls.reserves`).
        """
        ...


class Records(Protocol):
    """Short-lived values by key (call records: who may hang up a call)."""

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        """Keep `value` under `key` for `ttl_ms`."""
        ...

    async def put_if_absent(self, key: str, value: str, ttl_ms: int) -> bool:
        """Keep `value` under `key` for `ttl_ms` unless `key` holds a value; whether it did.

        Atomic across workers and replicas: of two writers of one key, one wins.
        """
        ...

    async def get(self, key: str) -> str | None:
        """The value under `key`, or None once it expired or was never set."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key`."""
        ...

    async def update_existing(self, values: Mapping[str, str], ttl_ms: int) -> None:
        """Overwrite those of `values` whose key still holds a value, in one round trip.

        A key deleted meanwhile stays deleted: a late update of a call that
        has just ended must not bring its record back.
        """
        ...

    async def missing(self, keys: Sequence[str]) -> list[str]:
        """Those of `keys` that hold nothing (expired, deleted, or lost with the store's data)."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The values under `keys`, in order (None where nothing is), in one round trip."""
        ...


class Slots(Protocol):
    """Members that expire on their own, at most `limit` per key (live calls per caller)."""

    async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
        """Add `member` unless `key` holds `limit` live members (expired ones do not count)."""
        ...

    async def unreserve(self, key: str, member: str) -> None:
        """Give `member`'s slot back."""
        ...

    async def restore(self, key: str, member: str, ttl_ms: int) -> None:
        """Put back the slot of a live call the store lost, whatever the limit says (it is live)."""
        ...

    async def occupancy(self, key: str) -> int:
        """How many live members `key` holds."""
        ...

    async def members(self, key: str) -> list[str]:
        """The live members `key` holds (a day's index of callers, say), in no order."""
        ...


class Leases(Protocol):
    """Which worker supervises which call; an expired lease is an orphaned call."""

    async def claim(self, member: str, owner: str, ttl_ms: int) -> bool:
        """Take `member`'s lease if it is free, expired or already `owner`'s."""
        ...

    async def renew(self, members: Sequence[str], owner: str, ttl_ms: int) -> list[str]:
        """Extend `owner`'s leases (taking any never written); the ones another holds now."""
        ...

    async def release(self, members: Sequence[str], owner: str) -> None:
        """Expire `owner`'s leases now, so another worker takes them over at once."""
        ...

    async def drop(self, member: str) -> None:
        """Forget a lease for good (the call ended)."""
        ...

    async def orphans(self, limit: int) -> list[str]:
        """Members whose lease expired: calls whose supervisor is gone."""
        ...


class Store(Rates, Counters, Records, Slots, Leases, Protocol):
    """All of the shared state, in one place (one pool), and its health."""

    async def ping(self) -> bool:
        """Whether the store answers now."""
        ...

    async def aclose(self) -> None:
        """Close connections (at shutdown)."""
        ...


def held_key(key: str) -> str:
    """The counter of what admitted calls reserve against the budget counter `key`."""
    return f"{key}:held"


def evaluate_gcra(tat: float, now: int, count: int, period: int) -> tuple[int, int, float]:
    """One GCRA step: `(retry_after_ms, remaining, new_tat)`; the Lua script mirrors it."""
    interval = period / count
    tat = max(tat, now)
    if tat - now > period - interval:
        return math.ceil(tat - now - (period - interval)), 0, tat
    new_tat = tat + interval
    return 0, math.floor((period - (new_tat - now)) / interval), new_tat
