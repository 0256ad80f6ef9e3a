"""The shared state: one store, in process memory or in Redis, with small interfaces by use.

`build_store` picks the implementation from `REDIS_URL`; its users name the
interface they need (`Rates`, `Counters`, `Records`, `Slots`, `Leases`).
A store that cannot answer raises `StoreUnavailable`, the caller's 503.
"""

from service.config import Settings
from service.core.clock import Clock, wall_ms
from service.store.base import (
    Counters,
    Leases,
    Limit,
    Rates,
    Records,
    Slots,
    Store,
    StoreUnavailable,
    held_key,
)
from service.store.memory import MemoryStore


def build_store(settings: Settings, clock: Clock = wall_ms) -> Store:
    """Redis when REDIS_URL is set (on Redis's clock), else process memory (on `clock`)."""
    if settings.redis_url:
        from service.store.redis import RedisStore  # redis-py: only imported when used

        return RedisStore(settings.redis_url, settings.redis_timeout_seconds)
    return MemoryStore(clock)


__all__ = [
    "Counters",
    "Leases",
    "Limit",
    "MemoryStore",
    "Rates",
    "Records",
    "Slots",
    "Store",
    "StoreUnavailable",
    "build_store",
    "held_key",
]
