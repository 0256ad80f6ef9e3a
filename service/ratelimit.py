"""How often a caller may mint: per-identity and per-IP rates, and a daily quota.

Rates use GCRA (the generic cell rate algorithm): one timestamp per key, a
burst of up to N, then one every period/N. The daily quota is a counter per
identity and UTC day. All limits of one request are checked and committed
together, atomically, so a request refused by one limit consumes none.

Stores:

- memory (no `REDIS_URL`): exact within one process; expired keys are swept.
- Redis: one Lua script, one round trip per check, exact across workers and
  replicas; every key has a TTL, so nothing grows without bound.

If Redis is unreachable, `RATE_LIMIT_ON_STORE_ERROR` decides: `closed` answers
503 within the store timeout, `open` mints and logs. redis-py reconnects on
the next call, so the service recovers by itself when Redis returns.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from service import metrics
from service.config import Rate, Settings
from service.errors import RateLimited, ServiceUnavailable

log = structlog.get_logger("service.ratelimit")
DAY_MS = 86_400_000
Kind = Literal["rate", "quota"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit to check: a GCRA rate, or a quota counter expiring at `period_ms`."""

    key: str
    kind: Kind
    count: int
    period_ms: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a check, with what the RateLimit-* headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` (and `Retry-After` when refused), for the response."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


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


class MemoryStore:
    """Exact for one process: the event loop serialises every check."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, int]] = {}
        self._ops = 0

    async def hit(self, limits: list[Limit], now_ms: int) -> tuple[int, list[tuple[int, int]]]:
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
                wait = limit.period_ms if value >= limit.count else 0
                updates.append((limit.key, (value + 1, now_ms + limit.period_ms)))
                results.append((max(0, limit.count - int(value) - 1), limit.period_ms))
            retry = max(retry, wait)
        if retry == 0:
            self._values.update(updates)
        return retry, results

    def _sweep(self, now_ms: int) -> None:
        self._ops += 1
        if self._ops % self.SWEEP_EVERY == 0:
            self._values = {k: v for k, v in self._values.items() if v[1] > now_ms}

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


def _key_part(value: str) -> str:
    """Bounded, PII-free key material for an identity or address."""
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()


class Limiter:
    """Applies RATE_LIMIT_PER_IDENTITY, RATE_LIMIT_PER_IP and QUOTA_MINTS_PER_DAY."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.store = store
        self._per_identity: Rate | None = settings.rate_limit_per_identity
        self._per_ip: Rate | None = settings.rate_limit_per_ip
        self._quota = settings.quota_mints_per_day
        self._fail_open = settings.rate_limit_on_store_error == "open"
        self._last_warning = 0.0

    @property
    def enabled(self) -> bool:
        """Whether any limit is configured."""
        return bool(self._per_identity or self._per_ip or self._quota)

    def _limits(self, identity: str, ip: str, now_ms: int) -> list[Limit]:
        limits = []
        if self._per_identity:
            rate = self._per_identity
            limits.append(
                Limit(f"rtp:r:id:{_key_part(identity)}", "rate", rate.count, rate.period * 1000)
            )
        if self._per_ip:
            rate = self._per_ip
            limits.append(
                Limit(f"rtp:r:ip:{_key_part(ip)}", "rate", rate.count, rate.period * 1000)
            )
        if self._quota:
            day = now_ms // DAY_MS
            limits.append(
                Limit(
                    f"rtp:q:{day}:{_key_part(identity)}",
                    "quota",
                    self._quota,
                    (day + 1) * DAY_MS - now_ms,
                )
            )
        return limits

    async def check(self, identity: str, ip: str) -> Verdict | None:
        """Count one mint for this caller; raise 429 (or 503) when it may not mint."""
        if not self.enabled:
            return None
        now_ms = int(time.time() * 1000)
        limits = self._limits(identity, ip, now_ms)
        try:
            retry_ms, results = await self.store.hit(limits, now_ms)
        except StoreUnavailable as exc:
            self._store_down(str(exc))
            return None
        tightest = min(range(len(limits)), key=lambda i: results[i][0])
        remaining, reset_ms = results[tightest]
        verdict = Verdict(
            retry_ms == 0,
            limits[tightest].count,
            remaining,
            math.ceil(reset_ms / 1000),
            max(1, math.ceil(retry_ms / 1000)),
        )
        if not verdict.allowed:
            metrics.RATE_LIMITED.labels("caller").inc()
            raise RateLimited(
                "Rate limit exceeded for this caller; retry later.", headers=verdict.headers()
            )
        return verdict

    def _store_down(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.error(
                "rate_limit_store_unavailable",
                reason=reason,
                action="minting without limits" if self._fail_open else "refusing mints",
            )
        if not self._fail_open:
            raise ServiceUnavailable(
                "The rate-limit store is unavailable; retry shortly.", headers={"Retry-After": "1"}
            )


def build_store(settings: Settings) -> Store:
    """Redis when REDIS_URL is set, else process memory."""
    if settings.redis_url:
        from service.redis_store import RedisStore  # redis-py: only imported when used

        return RedisStore(settings.redis_url, settings.redis_timeout_seconds)
    return MemoryStore()
