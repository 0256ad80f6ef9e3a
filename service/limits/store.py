"""What every rate-limit store shares: the limits to check, the store's protocol, GCRA.

GCRA (the generic cell rate algorithm) keeps one timestamp per key: a burst
of up to N, then one every period/N. `evaluate_gcra` is the reference
implementation; the memory store runs it and the Redis store's Lua script
mirrors it.
"""

from __future__ import annotations

import math
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
