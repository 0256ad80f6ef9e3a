"""How often a caller may mint: per-identity and per-IP rates, and a daily quota.

Rates use GCRA (the generic cell rate algorithm): one timestamp per key, a
burst of up to N, then one every period/N. The daily quota is a counter per
identity and UTC day. All limits of one request are checked and committed
together, atomically, so a request refused by one limit consumes none.

The counting itself is the shared store's (`service.store.Rates`): exact in
one process's memory, or in Redis across workers and replicas, one atomic
round trip per check.

If Redis is unreachable, `RATE_LIMIT_ON_STORE_ERROR` decides: `closed` answers
503 within twice the store timeout, `open` mints and logs. A command that
finds its connection dead is retried once on a fresh one, so the first mint
after Redis returns (or after a failover) succeeds.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

import structlog

from service.config import Settings
from service.core import metrics
from service.core.clock import DAY_MS, Clock, day_of, wall_ms
from service.core.env_values import Rate, micro_dollars
from service.core.errors import RateLimited
from service.limits.ceiling import ceiling_reached, deployment_usd_key
from service.limits.suspensions import Suspensions
from service.store import Counters, Limit, Rates, StoreUnavailable

log = structlog.get_logger("service.limits")


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


def address_block(ip: str) -> str:
    """What a per-IP limit counts: an IPv4 address, or an IPv6 address's /64.

    One IPv6 host usually holds a whole /64 and can pick any address in it,
    so counting single IPv6 addresses would let one client mint without limit.
    """
    try:
        address = ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def _key_part(value: str) -> str:
    """Bounded, PII-free key material for an identity or address."""
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()


class Limiter:
    """Applies RATE_LIMIT_PER_IDENTITY, RATE_LIMIT_PER_IP, QUOTA_MINTS_PER_DAY, and dry runs'."""

    def __init__(
        self,
        settings: Settings,
        rates: Rates,
        clock: Clock = wall_ms,
        suspensions: Suspensions | None = None,
        counters: Counters | None = None,
    ) -> None:
        self._rates = rates
        self._suspensions = suspensions
        self._counters = counters
        ceiling = settings.quota_usd_per_day_total
        self._ceiling = micro_dollars(ceiling) if ceiling is not None else None
        self._clock = clock
        self._dry_run: Rate | None = settings.rate_limit_dry_run_per_identity
        self._per_identity: Rate | None = settings.rate_limit_per_identity
        self._per_ip: Rate | None = settings.rate_limit_per_ip
        self._quota = settings.quota_mints_per_day
        self._fail_open = settings.rate_limit_on_store_error == "open"
        self._last_warning = 0.0

    @property
    def enabled(self) -> bool:
        """Whether any limit is configured."""
        return bool(self._per_identity or self._per_ip or self._quota)

    def _limits(self, identity: str, ip: str) -> list[Limit]:
        limits = []
        if self._per_identity:
            rate = self._per_identity
            limits.append(
                Limit(f"rtp:r:id:{_key_part(identity)}", "rate", rate.count, rate.period * 1000)
            )
        if self._per_ip:
            rate = self._per_ip
            limits.append(
                Limit(
                    f"rtp:r:ip:{_key_part(address_block(ip))}",
                    "rate",
                    rate.count,
                    rate.period * 1000,
                )
            )
        if self._quota:
            # The key names the day, so a store whose clock has passed midnight counts anew.
            day = self._clock() // DAY_MS
            limits.append(Limit(f"rtp:q:{day}:{_key_part(identity)}", "quota", self._quota))
        return limits

    async def check(self, identity: str, ip: str, caller: str) -> Verdict | None:
        """Count one mint for this caller; raise 403 while an operator suspended them
        (`caller`: as audit lines name them), 429 (or 503) when they may not mint.

        Past the deployment's `QUOTA_USD_PER_DAY_TOTAL` every mint is a 429. A refused
        mint counts against nothing. Only with suspensions on (`ADMIN_API_KEYS`), and
        with the ceiling set, does each cost a store read.
        """
        if self._suspensions is not None:
            try:
                await self._suspensions.refuse_if_suspended(caller)
            except StoreUnavailable as down:
                self._store_down(down)
        if self._ceiling is not None and self._counters is not None:
            try:
                (spent,) = await self._counters.counts([deployment_usd_key(day_of(self._clock()))])
            except StoreUnavailable as down:
                self._store_down(down)
            else:
                if spent >= self._ceiling:
                    raise ceiling_reached(self._clock)
        if not self.enabled:
            return None
        return await self._hit(self._limits(identity, ip))

    async def check_dry_run(self, identity: str) -> Verdict | None:
        """Count one dry run for this caller against its own, separate rate.

        Dry runs mint nothing, so they do not use up the mint limits; but each
        still costs a policy evaluation, so they are not free either.
        """
        if self._dry_run is None:
            return None
        rate = self._dry_run
        key = f"rtp:r:dry:{_key_part(identity)}"
        return await self._hit([Limit(key, "rate", rate.count, rate.period * 1000)])

    async def _hit(self, limits: list[Limit]) -> Verdict | None:
        try:
            retry_ms, results = await self._rates.hit(limits)
        except StoreUnavailable as down:
            self._store_down(down)
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

    def _store_down(self, down: StoreUnavailable) -> None:
        """RATE_LIMIT_ON_STORE_ERROR: `open` mints unlimited (logged), `closed` is the 503."""
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.error(
                "rate_limit_store_unavailable",
                reason=down.reason,
                action="minting without limits" if self._fail_open else "refusing mints",
            )
        if not self._fail_open:
            raise down
