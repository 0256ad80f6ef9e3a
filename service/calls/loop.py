"""The per-call loop: one call's sideband, followed until the call ends or is hung up.

For each call the supervisor runs `CallLoop.follow`, which

- attaches to the call's sideband (`service.upstream.sideband`) and restates
  what the policy fixed on every attach;
- hands every `session.updated`, and each Realtime response, item and output
  item, to `service.calls.overrides`, which checks them against the policy
  (what it fixed, and every other rule of the caller's profile) and reverts,
  cancels, deletes or hangs up by `CALLS_ON_OVERRIDE`;
- hangs up at `CALLS_MAX_SECONDS`;
- under `CALLS_RESPONSES=server`, answers each committed user turn with the
  supervisor's own marked `response.create` (`service.calls.turns`), the
  caller's day checked first (over quota: hung up);
- counts Realtime tokens (`response.done`) against the caller's day, and
  hangs up a call whose caller crosses `QUOTA_TOKENS_PER_DAY`; notes
  GPT-Live's usage seconds for the keeper to write (the call's own usage
  too, into its record, on the keeper's next pass);
- reconnects with backoff when the sideband drops while the call lives.

Events carry transcripts and item text: only their types, roles, sizes, ids,
field names and usage numbers are read into logs, metrics or the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from typing import Any, Literal

import structlog

from service.billing import Cost
from service.calls.fixed import TURN_DETECTION, restoring, value_at
from service.calls.overrides import Overrides
from service.calls.records import CallRecords
from service.calls.spend import TRANSCRIBED, Ceiling, Spend, usd
from service.calls.turns import response_create
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
from service.core.errors import NotFound, ServiceError
from service.limits import deployment_usd_key
from service.store import Counters, StoreUnavailable
from service.upstream import Upstream
from service.upstream.calls import hang_up
from service.upstream.sideband import Sideband, SidebandClosed, SidebandConnection

log = structlog.get_logger("service.calls")
CONNECT_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 10.0
HANGUP_RETRY_S = 1.0
REALTIME_CHECKED = frozenset(
    {
        "response.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "conversation.item.created",
    }
)
"""The Realtime events read besides `session.updated`: usage, responses, items, tool calls."""
How = Literal[
    "ended",
    "unknown_call",
    "max_duration",
    "override",
    "quota",
    "budget",
    "ceiling",
    "over_cap",
    "operator",
]
"""How a supervised call ended, as `rtp_calls_ended_total{how}` counts it. `ended`: it
ended upstream (a hang-up, the browser leaving, Live's `session.closed`), the same
for both kinds of call; `over_cap`: over
`CALLS_MAX_CONCURRENT_PER_IDENTITY` once the store returned (`CALLS_OVER_CAP_AFTER_OUTAGE`);
`operator`: an operator ended the caller's calls (`/admin`); `budget`: the call's cost
reached `CALLS_MAX_USD`; `ceiling`: the deployment's reached `QUOTA_USD_PER_DAY_TOTAL`."""


def backoff(attempt: int) -> float:
    """Full jitter, 0.25 s doubling to `BACKOFF_MAX_S`."""
    return random.uniform(0, min(BACKOFF_MAX_S, 0.25 * 2**attempt))  # noqa: S311 - jitter


class CallLoop:
    """Follows calls over their sidebands; one per supervisor, one `follow` per call."""

    def __init__(
        self,
        settings: Settings,
        sideband: Sideband,
        upstream: Upstream,
        counters: Counters,
        records: CallRecords,
        clock: Clock,
        spend: Spend,
        ceiling: Ceiling,
    ) -> None:
        self._settings = settings
        self._sideband = sideband
        self._upstream = upstream
        self._counters = counters
        self._records = records
        self._clock = clock
        self._overrides = Overrides(settings, clock, self._write, self.hang_up)
        self._spend = spend
        self._ceiling = ceiling

    async def follow(self, call: Watched) -> How:
        """Attach, and re-attach after drops, until the call ends or is hung up."""
        record = call.record
        attempt = 0
        while True:
            left_s = (record.deadline_ms - self._clock()) / 1000
            if left_s <= 0 and await self.hang_up(call, "max_duration"):
                return "max_duration"
            try:
                async with asyncio.timeout(max(0.1, min(left_s, CONNECT_TIMEOUT_S))):
                    connection = await self._sideband.connect(record.kind, record.call_id)
            except SidebandClosed as closed:
                if closed.reason != "dropped":
                    return closed.reason
                attempt += 1
                await asyncio.sleep(backoff(attempt))
                continue
            except TimeoutError:
                attempt += 1
                continue
            if attempt:
                metrics.SIDEBAND_RECONNECTS.inc()
                log.info("sideband_reconnected", call_id=record.call_id, attempts=attempt)
            attempt = 0
            try:
                await self._assert_policy(call, connection)
                return await self._read(call, connection)
            except SidebandClosed as closed:
                if closed.reason != "dropped":
                    return closed.reason
                log.info("sideband_dropped", call_id=record.call_id)
            except Exception:
                # Never mistake a fault here for the call's end: the call goes on,
                # so supervision does too, on a fresh sideband.
                log.exception("call_supervision_fault", call_id=record.call_id)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
            attempt = 1
            await asyncio.sleep(backoff(attempt))

    async def _assert_policy(self, call: Watched, connection: SidebandConnection) -> None:
        """On every attach, restate what the policy fixed.

        A `session.updated` sent while no sideband was attached (between
        creation and attach, during a reconnect, or before another worker
        took the call over) was never seen; restating the fixed fields makes
        the session hold the policy again whatever happened meanwhile. The
        model is left out: it does not change within a session.
        """
        fixed = call.record.fixed
        paths = [path for path in fixed if path != "model"]
        if paths:
            detection = value_at(call.record.created, TURN_DETECTION)
            await connection.send(restoring(call.record.kind, fixed, paths, detection))

    async def _read(self, call: Watched, connection: SidebandConnection) -> How:
        """Handle the call's events until it ends; `SidebandClosed` if the socket does."""
        while True:
            left_s = (call.record.deadline_ms - self._clock()) / 1000
            try:
                async with asyncio.timeout(max(0.0, left_s)):
                    event = await connection.recv()
            except TimeoutError:
                if await self.hang_up(call, "max_duration"):
                    return "max_duration"
                continue
            how = await self._on_event(call, connection, event)
            if how is not None:
                return how

    async def _on_event(
        self, call: Watched, connection: SidebandConnection, event: Mapping[str, Any]
    ) -> How | None:
        kind, event_type = call.record.kind, event.get("type")
        if event_type == "session.updated":
            session = event.get("session")
            if isinstance(session, Mapping):
                call.transcription_model = self._spend.transcription_model(session)
                hung_up = await self._overrides.session_updated(call, connection, session)
                return "override" if hung_up else None
        elif event_type == "input_audio_buffer.committed" and call.record.tag is not None:
            return await self._answer_turn(call, connection, call.record.tag)
        elif kind == "realtime" and event_type in REALTIME_CHECKED:
            if event_type == "response.done":
                return await self._response_done(call, event)
            hung_up = await self._overrides.realtime_event(call, connection, event)
            return "override" if hung_up else None
        elif event_type == TRANSCRIBED and kind == "realtime":
            cost = self._spend.transcription(call.transcription_model, event)
            if cost is not None:
                return await self._count(call, 0, cost.pico_dollars)
        elif event_type in ("session.usage.updated", "session.closed") and kind == "live":
            usage = event.get("usage")
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
            how = await self._live_cost(call, usage)
            if event_type == "session.closed":
                return "ended"
            return how
        return None

    async def _answer_turn(
        self, call: Watched, connection: SidebandConnection, tag: str
    ) -> How | None:
        """`CALLS_RESPONSES=server`: a committed user turn gets the supervisor's marked
        `response.create`, once the caller's day is checked: a caller whose tokens or
        seconds are spent is hung up (`quota`), as when usage crosses them.

        The check reads the two counters in one round trip; a store that cannot answer
        does not stop the call (as usage that cannot be counted), it is logged.
        """
        record = call.record
        keys = UsageKeys(record.owner, day_of(self._clock()))
        try:
            tokens, seconds = await self._counters.counts([keys.tokens, keys.seconds])
        except StoreUnavailable:
            log.warning("call_quota_unchecked", call_id=record.call_id)
        else:
            settings = self._settings
            if over(tokens, settings.quota_tokens_per_day) or over(
                seconds, settings.quota_call_seconds_per_day
            ):
                metrics.CALL_TURNS.labels("quota").inc()
                if await self.hang_up(call, "quota"):
                    return "quota"
                return None
        await connection.send(response_create(tag, record.call_id, self._clock()))
        metrics.CALL_TURNS.labels("answered").inc()
        return None

    async def _write(self, call: Watched) -> None:
        """The record's new state, now: its owner is watching. Left for the keeper's next
        pass too (`changed`), which rewrites it after a failed or out-of-order write."""
        call.changed = True
        try:
            await self._records.update([call.record])
        except StoreUnavailable:
            log.warning("call_state_unrecorded", call_id=call.record.call_id)

    async def _response_done(self, call: Watched, event: Mapping[str, Any]) -> How | None:
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

    async def _count(
        self, call: Watched, tokens: int, pico: int, *, live: bool = False
    ) -> How | None:
        """Count a call's new tokens and cost against its caller's day, its profile's, the
        deployment's and its own (one round trip), then hold it to its budgets.

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
        keys = UsageKeys(record.owner, day)
        increments = {keys.tokens: tokens} if tokens else {}
        if micro:
            increments.update(dict.fromkeys(self._spend.keys(record, day), micro))
        totals: dict[str, int] = {}
        if increments:
            try:
                totals = await self._counters.add(increments, COUNTER_TTL_MS)
            except StoreUnavailable:
                # Kept, not dropped: the keeper's next pass writes them once the store answers.
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
            if await self.hang_up(call, "budget"):
                return "budget"
        quota = self._settings.quota_tokens_per_day
        spent = over(totals.get(keys.tokens, 0), quota) if keys.tokens in totals else False
        spent = spent or (keys.usd in totals and over(totals[keys.usd], limits.caller_day))
        if spent and await self.hang_up(call, "quota"):
            return "quota"
        ceiling = deployment_usd_key(keys.day)
        if ceiling in totals and over(totals[ceiling], limits.deployment_day):
            self._ceiling.reached(keys.day, totals[ceiling], limits.deployment_day)
            if await self.hang_up(call, "ceiling"):
                return "ceiling"
        return None

    async def hang_up(self, call: Watched, reason: str) -> bool:
        """End the call upstream; True once it is over (also if it already was)."""
        record = call.record
        try:
            await hang_up(self._upstream, record.kind, record.call_id, f"supervisor-{reason}")
        except NotFound:
            pass
        except ServiceError as failed:
            log.warning(
                "call_hangup_failed", call_id=record.call_id, reason=reason, code=failed.code
            )
            await asyncio.sleep(HANGUP_RETRY_S)
            return False
        metrics.CALL_HANGUPS.labels(reason).inc()
        log.info("call_hung_up", call_id=record.call_id, kind=record.kind, reason=reason)
        return True
