"""Metering: what a call's events say it used, counted against its budgets as they arrive.

The loop (`service.calls.loop`) hands `Meter` each usage event of a call:

- a Realtime `response.done`: its tokens (clamped to `MAX_RESPONSE_TOKENS`)
  and its cost at the call's model (`service.calls.spend`);
- a completed input transcription: its cost at the transcription model;
- GPT-Live's cumulative usage: its seconds (clamped to the call's age, for the
  keeper's next pass to write) and its whole cost so far, of which only what
  is new is counted.

Tokens and dollars are written at once, in one round trip, to the caller's
day, the profile's day, the deployment's day and the call's own counter; the
store down, they wait on the call for the keeper's next pass (never dropped,
never written twice), and what they spend of the call's admission reserve is
given back in the same write (`service.calls.reserves`). Then the call is held
to its budgets: its own dollars (`CALLS_MAX_USD`, audited
`call_budget_exceeded`), its caller's day (tokens, dollars) and the
deployment's ceiling; past one it is hung up (`budget`, `quota`, `ceiling`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from service.billing import Cost
from service.calls.batching import CoalescedCounters
from service.calls.endings import How
from service.calls.reserves import restore, shrink
from service.calls.spend import Ceiling, Spend, usd
from service.calls.usage import (
    COUNTER_TTL_MS,
    MAX_RESPONSE_TOKENS,
    UsageKeys,
    over,
    plausible_live_seconds,
)
from service.calls.watched import Watched
from service.config import Settings
from service.core import metrics
from service.core.clock import Clock, day_of
from service.limits import deployment_usd_key
from service.store import Counters, StoreUnavailable

log = structlog.get_logger("service.calls")


class Meter:
    """Counts the usage of calls as their events report it; one per supervisor.

    `hang_up` ends a call upstream (True once it is over).
    """

    def __init__(
        self,
        settings: Settings,
        counters: Counters,
        clock: Clock,
        spend: Spend,
        ceiling: Ceiling,
        hang_up: Callable[[Watched, str], Awaitable[bool]],
    ) -> None:
        self._settings = settings
        self._writes = CoalescedCounters(counters, COUNTER_TTL_MS)
        self._clock = clock
        self._spend = spend
        self._ceiling = ceiling
        self._hang_up = hang_up

    async def flush(self) -> None:
        """Wait for the usage writes in flight (`CoalescedCounters.flush`)."""
        await self._writes.flush()

    async def response_done(self, call: Watched, event: Mapping[str, Any]) -> How | None:
        """A Realtime response's tokens and cost, counted."""
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, Mapping) else None
        tokens = usage.get("total_tokens") if isinstance(usage, Mapping) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
            tokens = 0
        if tokens > MAX_RESPONSE_TOKENS:
            log.warning(
                "call_usage_clamped",
                call_id=call.record.call_id,
                field="response.usage.total_tokens",
                reported=tokens,
                bound=MAX_RESPONSE_TOKENS,
            )
            tokens = MAX_RESPONSE_TOKENS
        if tokens:
            metrics.USAGE_TOKENS.inc(tokens)
            call.record.tokens += tokens
            call.changed = True
        cost = self._spend.response(call.record, event)
        return await self._count(call, tokens, cost.pico_dollars if cost is not None else 0)

    async def _live_cost(self, call: Watched, usage: object) -> How | None:
        """GPT-Live's cumulative usage, priced: the session's whole cost so far, of which only
        what is new is counted (after a takeover the counted part is the store's)."""
        cost = self._spend.live(call.record, usage)
        if cost is None or cost.pico_dollars <= call.cost_pico:
            return None
        new = cost.pico_dollars - call.cost_pico
        return await self._count(call, 0, new, live=True)

    async def transcribed(self, call: Watched, event: Mapping[str, Any]) -> How | None:
        """A completed input transcription, priced at the session's transcription model."""
        cost = self._spend.transcription(call.transcription_model, event)
        if cost is None:
            return None
        return await self._count(call, 0, cost.pico_dollars)

    async def _count(
        self, call: Watched, tokens: int, pico: int, *, live: bool = False
    ) -> How | None:
        """Count a call's new tokens and cost against its caller's day, its profile's, the
        deployment's and its own (one round trip, shared with the other calls' events of the
        moment: `service.calls.batching`), then hold it to its budgets.

        What the store cannot take now is kept for the keeper's next pass (it is
        written once, never dropped), and the call's own dollar budget holds anyway:
        its cost is this worker's to know.
        """
        record = call.record
        call.cost_pico += pico
        micro = max(0, Cost(call.cost_pico).micro_dollars - call.counted_micro)
        call.counted_micro += micro
        if micro:
            record.cost_micro = call.counted_micro
            call.changed = True
            if live:
                self._spend.counted_live(record, micro)
        day = day_of(self._clock())
        if call.keys_day != day:
            # Named once a day per call: every usage event writes to the same counters.
            call.keys_day, call.usage_keys = day, UsageKeys(record.owner, day)
            call.dollar_keys = self._spend.keys(record, day)
        keys = call.usage_keys
        increments = {keys.tokens: tokens} if tokens else {}
        if micro:
            increments.update(dict.fromkeys(call.dollar_keys, micro))
        totals: dict[str, int] = {}
        if increments:
            # What this spends of the call's reserve is given back in the same write.
            taken = shrink(call, {"tokens": tokens, "usd": micro}, increments)
            try:
                totals = await self._writes.add(increments)
            except StoreUnavailable:
                # Kept, not dropped: the keeper's next pass writes them once the store answers.
                restore(call, taken)
                call.unwritten_tokens += tokens
                call.unwritten_micro += micro
                log.warning(
                    "call_usage_deferred", call_id=record.call_id, tokens=tokens, micro_usd=micro
                )
        return await self._held(call, totals, keys)

    async def _held(self, call: Watched, totals: Mapping[str, int], keys: UsageKeys) -> How | None:
        """Hang up a call past a budget: its own dollars (`CALLS_MAX_USD`), its caller's day
        (tokens, dollars), the deployment's day (`QUOTA_USD_PER_DAY_TOTAL`)."""
        record = call.record
        limits = self._spend.limits(record)
        if limits.call is not None and call.counted_micro >= limits.call:
            log.warning(
                "call_budget_exceeded",
                call_id=record.call_id,
                kind=record.kind,
                identity=record.caller,
                cost_usd=usd(call.counted_micro),
                limit_usd=usd(limits.call),
            )
            if await self._hang_up(call, "budget"):
                return "budget"
        quota = self._settings.quota_tokens_per_day
        spent = over(totals.get(keys.tokens, 0), quota) if keys.tokens in totals else False
        spent = spent or (keys.usd in totals and over(totals[keys.usd], limits.caller_day))
        if spent and await self._hang_up(call, "quota"):
            return "quota"
        ceiling = deployment_usd_key(keys.day)
        if ceiling in totals and over(totals[ceiling], limits.deployment_day):
            self._ceiling.reached(keys.day, totals[ceiling], limits.deployment_day)
            if await self._hang_up(call, "ceiling"):
                return "ceiling"
        return None

    async def live_usage(self, call: Watched, usage: object) -> How | None:
        """GPT-Live's cumulative usage (`session.usage.updated`, `session.closed`): its seconds,
        clamped to what the call's age allows, noted for the keeper to write; its cost counted."""
        seconds = usage.get("seconds") if isinstance(usage, Mapping) else None
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            bound = plausible_live_seconds(call.record.started_ms, self._clock())
            if not seconds <= bound:  # NaN too
                log.warning(
                    "call_usage_clamped",
                    call_id=call.record.call_id,
                    field="usage.seconds",
                    reported=seconds,
                    bound=round(bound, 1),
                )
                seconds = bound
            if call.live_seconds is not None and seconds > call.live_seconds:
                call.unmetered_ms += int((seconds - call.live_seconds) * 1000)
            call.live_seconds = max(float(seconds), call.live_seconds or 0.0)
            if seconds > call.record.usage_seconds:
                call.record.usage_seconds = float(seconds)
                call.changed = True
        return await self._live_cost(call, usage)
