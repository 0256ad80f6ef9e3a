"""What every rate-limit store shares: the limits to check, the store's protocol, GCRA.

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

Kind = Literal["rate", "quota"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit to check: a GCRA rate, or a quota counter expiring at `period_ms`."""

    key: str
    kind: Kind
    count: int
    period_ms: int


class StoreUnavailable(Exception):
    """The store could not answer in time."""


class Store(Protocol):
    """Checks and commits a set of limits atomically; keeps short-lived records.

    Both are shared state that every worker and replica must agree on, so they
    live in the same place: process memory, or Redis. Every key expires.
    """

    async def hit(self, limits: list[Limit], now_ms: int) -> tuple[int, list[tuple[int, int]]]:
        """`(retry_after_ms, [(remaining, reset_ms), ...])`; retry 0 means allowed."""
        ...

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        """Keep `value` under `key` for `ttl_ms` (call records: who may hang up a call)."""
        ...

    async def get(self, key: str) -> str | None:
        """The value under `key`, or None once it expired or was never set."""
        ...

    async def delete(self, key: str) -> None: ...

    # Counters (usage per identity and day).

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        """Add to counters (created with `ttl_ms`); their new totals."""
        ...

    async def counts(self, keys: Sequence[str]) -> list[int]:
        """Current counter values (0 for a missing one)."""
        ...

    # Slots (live calls per identity): members that expire on their own.

    async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
        """Add `member` unless `key` holds `limit` live members (expired ones do not count)."""
        ...

    async def unreserve(self, key: str, member: str) -> None: ...

    async def occupancy(self, key: str) -> int:
        """How many live members `key` holds."""
        ...

    # Leases (which worker supervises which call).

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

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


def evaluate_gcra(tat: float, now: int, count: int, period: int) -> tuple[int, int, float]:
    """One GCRA step: `(retry_after_ms, remaining, new_tat)`; the Lua script mirrors it."""
    interval = period / count
    tat = max(tat, now)
    if tat - now > period - interval:
        return math.ceil(tat - now - (period - interval)), 0, tat
    new_tat = tat + interval
    return 0, math.floor((period - (new_tat - now)) / interval), new_tat
