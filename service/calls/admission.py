"""Admission: before a call is created, the caller's daily budgets and a live-call slot.

A call costs money from its first second (GPT-Live bills 15 seconds at
creation), so what a caller may not have is refused before anything goes
upstream: a caller over `QUOTA_TOKENS_PER_DAY` or `QUOTA_CALL_SECONDS_PER_DAY`
gets 429 `quota_exceeded` until midnight UTC, one at
`CALLS_MAX_CONCURRENT_PER_IDENTITY` live calls gets 429 `too_many_calls`.
Slots are members that expire on their own (the call's longest life and a
minute), so a slot whose call ended without a word is free again.

The store down: `RATE_LIMIT_ON_STORE_ERROR=open` admits and logs, `closed`
raises `StoreUnavailable` (the caller's 503). A call admitted open still gets
its slot's name, marked owed (`Admitted.owed`): the keeper takes the slot once
the store answers (`Keeper.take_owed_slots`), so the cap counts the call.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

import structlog

from service.calls.spend import NO_DOLLAR_LIMITS, DollarLimits, usd
from service.calls.usage import UsageKeys
from service.config import Settings
from service.contract.calls import CallKind
from service.core.clock import Clock, day_of, seconds_to_midnight
from service.core.errors import RateLimited
from service.limits import ceiling_reached, deployment_usd_key
from service.store import Counters, Slots, StoreUnavailable

log = structlog.get_logger("service.calls")


@dataclass(frozen=True, slots=True)
class Admitted:
    """What admission gave a call: its live-call slot, and whether it is owed."""

    slot: str | None = None
    """The slot member to record with the call (None without
    `CALLS_MAX_CONCURRENT_PER_IDENTITY`). Its name is the server's own, never a caller's."""
    owed: bool = False
    """Named but not taken: the store was down (`RATE_LIMIT_ON_STORE_ERROR=open`)."""


class Admission:
    """The budgets and slots of callers, as a call's creation and end see them."""

    def __init__(self, settings: Settings, counters: Counters, slots: Slots, clock: Clock) -> None:
        self._settings = settings
        self._counters = counters
        self._slots = slots
        self._clock = clock
        self._fail_open = settings.rate_limit_on_store_error == "open"

    async def admit(
        self, owner: str, kind: CallKind, limits: DollarLimits = NO_DOLLAR_LIMITS
    ) -> Admitted:
        """Check the caller's daily quotas (tokens, seconds, their profile's dollars) and the
        deployment's ceiling, and take a live-call slot; 429 otherwise.

        The quotas are read in one round trip. Give the slot back with
        `give_back` if the call is not created.
        """
        settings = self._settings
        keys = UsageKeys(owner, day_of(self._clock()))
        limit = settings.calls_max_concurrent_per_identity
        member = secrets.token_hex(8) if limit is not None else None
        candidates = {
            keys.tokens: settings.quota_tokens_per_day if kind == "realtime" else None,
            keys.seconds: settings.quota_call_seconds_per_day,
            keys.usd: limits.caller_day,
            deployment_usd_key(keys.day): limits.deployment_day,
        }
        quotas = {key: quota for key, quota in candidates.items() if quota is not None}
        try:
            if quotas:
                totals = await self._counters.counts(list(quotas))
                spent = [
                    key for key, total in zip(quotas, totals, strict=True) if total >= quotas[key]
                ]
                if deployment_usd_key(keys.day) in spent:
                    raise ceiling_reached(self._clock)
                if spent:
                    raise RateLimited(
                        "This caller's daily call budget is spent; it resets at 00:00 UTC.",
                        code="quota_exceeded",
                        headers={"Retry-After": str(seconds_to_midnight(self._clock()))},
                    )
            if limit is None or member is None:
                return Admitted()
            ttl_ms = (settings.calls_max_seconds + 60) * 1000
            if not await self._slots.reserve(keys.slots, member, limit, ttl_ms):
                raise RateLimited(
                    f"This caller already has {limit} live calls; hang one up first.",
                    code="too_many_calls",
                    headers={"Retry-After": "5"},
                )
        except StoreUnavailable as down:
            if not self._fail_open:
                raise
            log.error("call_admission_unchecked", reason=down.reason)
            return Admitted(member, owed=member is not None)
        return Admitted(member)

    async def give_back(self, owner: str, slot: str | None) -> None:
        """Free a slot: its call was not created, or has ended (`StoreUnavailable` if down)."""
        if slot is not None:
            await self._slots.unreserve(UsageKeys(owner, "").slots, slot)

    async def give_back_quietly(self, owner: str, slot: str | None) -> None:
        """`give_back` for a call that never was: with the store down, the slot expires."""
        with contextlib.suppress(StoreUnavailable):
            await self.give_back(owner, slot)

    async def usage(self, owner: str) -> dict[str, Any]:
        """The caller's usage today and their limits (`GET /v1/usage`)."""
        settings = self._settings
        keys = UsageKeys(owner, day_of(self._clock()))
        tokens, seconds, micro = await self._counters.counts([keys.tokens, keys.seconds, keys.usd])
        return {
            "date": keys.day,
            "usage": {
                "tokens": tokens,
                "call_seconds": seconds,
                "usd": usd(micro),
                "live_calls": await self._slots.occupancy(keys.slots),
            },
            "limits": {
                "tokens_per_day": settings.quota_tokens_per_day,
                "call_seconds_per_day": settings.quota_call_seconds_per_day,
                "concurrent_calls": settings.calls_max_concurrent_per_identity,
                "call_max_seconds": settings.calls_max_seconds,
                "mints_per_day": settings.quota_mints_per_day,
            },
        }
