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
    """Checks and commits a set of limits atomically; returns remaining/reset per limit."""

    async def hit(self, limits: list[Limit], now_ms: int) -> tuple[int, list[tuple[int, int]]]:
        """`(retry_after_ms, [(remaining, reset_ms), ...])`; retry 0 means allowed."""
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
