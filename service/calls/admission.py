"""Admission: before a call is created, the caller's daily budgets and a live-call slot.

A call costs money from its first second (GPT-Live bills 15 seconds at
creation), so what a caller may not have is refused before anything goes
upstream: a caller over `QUOTA_TOKENS_PER_DAY` or `QUOTA_CALL_SECONDS_PER_DAY`
gets 429 `quota_exceeded` until midnight UTC, one at
`CALLS_MAX_CONCURRENT_PER_IDENTITY` live calls gets 429 `too_many_calls`.
Slots are members that expire on their own (the call's longest life and a
minute), so a slot whose call ended without a word is free again. Each
admitted call reserves against the budgets it is checked against, checked
and reserved in one atomic step, so calls admitted at once cannot all pass
on one total (`service.calls.reserves`).

The store down: `RATE_LIMIT_ON_STORE_ERROR=open` admits and logs, `closed`
raises `StoreUnavailable` (the caller's 503). A call admitted open still gets
its slot's name, marked owed (`Admitted.owed`): the keeper takes the slot once
the store answers (`Keeper.take_owed_slots`), so the cap counts the call.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.calls.spend import NO_DOLLAR_LIMITS, DollarLimits, usd
from service.calls.usage import COUNTER_TTL_MS, UsageKeys
from service.config import Settings
from service.contract.calls import CallKind
from service.core.clock import Clock, day_of, seconds_to_midnight
from service.core.errors import RateLimited
from service.limits import ceiling_reached, deployment_usd_key
from service.store import Counters, Slots, StoreUnavailable, held_key

log = structlog.get_logger("service.calls")


@dataclass(frozen=True, slots=True)
class Admitted:
    """What admission gave a call: its live-call slot, and whether it is owed."""

    slot: str | None = None
    """The slot member to record with the call (None without
    `CALLS_MAX_CONCURRENT_PER_IDENTITY`). Its name is the server's own, never a caller's."""
    owed: bool = False
    """Named but not taken: the store was down (`RATE_LIMIT_ON_STORE_ERROR=open`)."""
    held: Mapping[str, int] = field(default_factory=dict)
    """The hold counters reserved against, and how much on each (`service.calls.reserves`)."""


class Admission:
    """The budgets and slots of callers, as a call's creation and end see them."""

    def __init__(self, settings: Settings, counters: Counters, slots: Slots, clock: Clock) -> None:
        self._settings = settings
        self._counters = counters
        self._slots = slots
        self._clock = clock
        self._fail_open = settings.rate_limit_on_store_error == "open"

    async def admit(
        self,
        owner: str,
        kind: CallKind,
        limits: DollarLimits = NO_DOLLAR_LIMITS,
        reserve_micro: int = 0,
    ) -> Admitted:
        """Check the caller's daily quotas (tokens, seconds, their profile's dollars) and the
        deployment's ceiling, reserving against each (`service.calls.reserves`), and take a
        live-call slot; 429 otherwise.

        Checked and reserved in one atomic step: spent plus what the calls admitted
        before hold must be under each budget. Give the slot and holds back with
        `give_back` if the call is not created.
        """
        settings = self._settings
        keys = UsageKeys(owner, day_of(self._clock()))
        limit = settings.calls_max_concurrent_per_identity
        member = secrets.token_hex(8) if limit is not None else None
        usd_hold = min(
            [reserve_micro, *(b for b in (limits.caller_day, limits.deployment_day) if b)]
        )
        candidates = {
            keys.tokens: (
                settings.quota_tokens_per_day if kind == "realtime" else None,
                settings.calls_reserve_tokens,
            ),
            keys.seconds: (settings.quota_call_seconds_per_day, settings.calls_reserve_seconds),
            keys.usd: (limits.caller_day, usd_hold),
            deployment_usd_key(keys.day): (limits.deployment_day, usd_hold),
        }
        checks = [(key, quota) for key, (quota, _) in candidates.items() if quota is not None]
        holds = {
            held_key(key): min(reserve, quota)
            for key, (quota, reserve) in candidates.items()
            if quota is not None and reserve > 0
        }
        held: dict[str, int] = {}
        try:
            if checks:
                refused = await self._counters.hold(checks, holds, COUNTER_TTL_MS)
                if refused == deployment_usd_key(keys.day):
                    raise ceiling_reached(self._clock)
                if refused is not None:
                    raise RateLimited(
                        "This caller's daily call budget is spent; it resets at 00:00 UTC.",
                        code="quota_exceeded",
                        headers={"Retry-After": str(seconds_to_midnight(self._clock()))},
                    )
                held = holds
            if limit is None or member is None:
                return Admitted(held=held)
            ttl_ms = (settings.calls_max_seconds + 60) * 1000
            if not await self._slots.reserve(keys.slots, member, limit, ttl_ms):
                await self.release(held)
                raise RateLimited(
                    f"This caller already has {limit} live calls; hang one up first.",
                    code="too_many_calls",
                    headers={"Retry-After": "5"},
                )
        except StoreUnavailable as down:
            if not self._fail_open:
                with contextlib.suppress(StoreUnavailable):
                    await self.release(held)  # held, then the slot failed: not this call's
                raise
            # What was held before the store failed stays the call's, released at its end.
            log.error("call_admission_unchecked", reason=down.reason)
            return Admitted(member, owed=member is not None, held=held)
        return Admitted(member, held=held)

    async def release(self, held: Mapping[str, int]) -> None:
        """Give back the holds of a call that was never created (`StoreUnavailable` if down)."""
        if held:
            await self._counters.add({key: -amount for key, amount in held.items()}, COUNTER_TTL_MS)

    async def give_back(self, owner: str, slot: str | None) -> None:
        """Free a slot: its call was not created, or has ended (`StoreUnavailable` if down)."""
        if slot is not None:
            await self._slots.unreserve(UsageKeys(owner, "").slots, slot)

    async def give_back_quietly(
        self, owner: str, slot: str | None, held: Mapping[str, int] | None = None
    ) -> None:
        """`give_back` (and `release`) for a call that never was: with the store down, the
        slot expires, and the holds count until their day ends."""
        with contextlib.suppress(StoreUnavailable):
            await self.give_back(owner, slot)
        with contextlib.suppress(StoreUnavailable):
            await self.release(held or {})

    async def usage(self, owner: str) -> dict[str, Any]:
        """The caller's usage today, what their live calls hold of their reserves, and their
        limits (`GET /v1/usage`)."""
        settings = self._settings
        keys = UsageKeys(owner, day_of(self._clock()))
        budgets = [keys.tokens, keys.seconds, keys.usd]
        counted = await self._counters.counts([*budgets, *map(held_key, budgets)])
        tokens, seconds, micro, held_tokens, held_seconds, held_micro = counted
        return {
            "date": keys.day,
            "held": {
                "tokens": max(0, held_tokens),
                "call_seconds": max(0, held_seconds),
                "usd": usd(max(0, held_micro)),
            },
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
