"""Time, as the stores and the supervisor read it: one clock, one day length, UTC days.

Code that measures time takes a `Clock` (milliseconds since the epoch), so
tests pass their own and never wait for the wall clock to move. Days are UTC
days: quotas and usage reset at 00:00 UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeAlias

DAY_MS = 86_400_000
"""One UTC day, in milliseconds (quotas, usage counters, `Retry-After` until midnight)."""

Clock: TypeAlias = Callable[[], int]
"""Milliseconds since the epoch."""


def wall_ms() -> int:
    """The system clock, in milliseconds: the `Clock` everything uses unless told otherwise."""
    return int(time.time() * 1000)


def day_of(now_ms: int) -> str:
    """The UTC day of a moment, as keys and `GET /v1/usage` name it (`2026-11-26`)."""
    return _day_name(now_ms // DAY_MS)


@lru_cache(maxsize=8)
def _day_name(day: int) -> str:
    # Every usage event names its day: formatting a date each time cost more than pricing it.
    return datetime.fromtimestamp(day * (DAY_MS // 1000), UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(now_ms: int) -> int:
    """Whole seconds until the next UTC day (at least 1): a daily quota's `Retry-After`."""
    return max(1, (DAY_MS - now_ms % DAY_MS) // 1000)
