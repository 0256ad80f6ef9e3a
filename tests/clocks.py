"""Time for the tests: a clock they move, and waiting for Redis's own clock where none can be.

The memory store and the limiter take a `service.core.clock.Clock`; tests pass
a `FakeClock` and move it instead of sleeping. The Redis store counts on
Redis's own clock (`TIME` in its scripts), which no test can move: there,
`wait_for_redis_time` waits until Redis's clock has itself moved on, polling
it, so a test waits as long as the store needs and no longer, however busy
the machine.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

START_MS = 1_800_000_000_000 + 12 * 3_600_000
"""Where a `FakeClock` starts: mid-day (UTC), far from a day's end."""
REDIS_TIME_DEADLINE_S = 30.0
"""Only a hang guard: Redis's clock moves with the wall clock."""


class FakeClock:
    """A `Clock` (epoch milliseconds) that moves only when told to."""

    def __init__(self, start_ms: int = START_MS) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        """Let `ms` milliseconds pass."""
        self.now_ms += ms


async def redis_time_ms(url: str) -> int:
    """Redis's clock (`TIME`), in milliseconds, as its scripts read it."""
    async with aioredis.Redis.from_url(url) as admin:
        seconds, microseconds = await admin.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


async def wait_for_redis_time(url: str, ms: int) -> None:
    """Return once Redis's own clock has moved at least `ms` milliseconds from now."""
    target = await redis_time_ms(url) + ms
    async with asyncio.timeout(REDIS_TIME_DEADLINE_S):
        while await redis_time_ms(url) < target:
            await asyncio.sleep(0.01)
