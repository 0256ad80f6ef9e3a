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
- hands each usage event (`response.done`, a completed input transcription,
  GPT-Live's usage) to `service.calls.metering`, which counts its tokens,
  seconds and dollars and hangs up a call past a budget;
- reconnects with backoff when the sideband drops while the call lives.

**A hostile or broken sideband.** The loop must neither spin nor flood the
logs, whatever the upstream does, and must not forget a call that lives:

- *Backoff and bound* (`service.calls.reattach`): the backoff grows with
  each failed attachment (a failed connect, or a connection that ended
  before it delivered an event and stayed up `STABLE_S`); after
  `CALLS_SIDEBAND_MAX_FAILURES` of them in the call's life it is hung up
  (`unsupervisable`). Failures are logged in aggregate, never one a line.
- *A normal close is not the end.* A sideband closed with 1000 is attached
  again; only a refusal that says the call is unknown (404, 4404), GPT-Live's
  `session.closed`, or a hang-up (404 included) ends the loop, so a call
  that still lives upstream keeps its record, its slot and its supervision.
  The emulator and OpenAI refuse the sideband of an ended call, so an ended
  call is still forgotten at once (`ended`: after the normal close).
- *Flood.* The connection drops events past
  `CALLS_SIDEBAND_MAX_EVENTS_PER_SECOND` (`service.upstream.sideband`); one
  over budget for `FLOOD_SECONDS` in a row is hung up (`flood`).
- *Faults.* A fault in our own handling is logged with its type and where it
  was raised (`module:line`), never its stack (which may be thousands of
  frames deep), and supervision goes on on a fresh sideband.

Events carry transcripts and item text: only their types, roles, sizes, ids,
field names and usage numbers are read into logs, metrics or the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog

from service.calls.endings import How
from service.calls.fixed import TURN_DETECTION, restoring, value_at
from service.calls.metering import Meter
from service.calls.overrides import Overrides
from service.calls.reattach import Attachment, Attempts, fault_site
from service.calls.records import CallRecords
from service.calls.spend import TRANSCRIBED, Ceiling, Spend
from service.calls.turns import response_create
from service.calls.usage import (
    UsageKeys,
    over,
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
from service.upstream.sideband import (
    Sideband,
    SidebandClosed,
    SidebandConnection,
    SidebandFlooded,
)

log = structlog.get_logger("service.calls")
CONNECT_TIMEOUT_S = 10.0
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
        self._meter = Meter(settings, counters, clock, spend, ceiling, self.hang_up)

    async def follow(self, call: Watched) -> How:
        """Attach, and re-attach after drops, until the call ends or is hung up."""
        record = call.record
        attempts = Attempts(self._settings, self._clock, record.call_id)
        try:
            return await self._follow(call, attempts)
        finally:
            attempts.flush()

    async def _follow(self, call: Watched, attempts: Attempts) -> How:
        record = call.record
        closed_normally = False
        while True:
            left_s = (record.deadline_ms - self._clock()) / 1000
            if left_s <= 0 and await self.hang_up(call, "max_duration"):
                return "max_duration"
            if attempts.exhausted:
                if await self.hang_up(call, "unsupervisable"):
                    return "unsupervisable"
                continue
            try:
                async with asyncio.timeout(max(0.1, min(left_s, CONNECT_TIMEOUT_S))):
                    connection = await self._sideband.connect(record.kind, record.call_id)
            except (SidebandClosed, TimeoutError) as closed:
                if isinstance(closed, SidebandClosed) and closed.reason != "dropped":
                    # Refused as unknown: the end, confirmed (after a normal close, `ended`).
                    ended = closed_normally or closed.reason == "ended"
                    return "ended" if ended else "unknown_call"
                await attempts.failed(
                    closed.detail if isinstance(closed, SidebandClosed) else "timeout"
                )
                continue
            attachment = attempts.opened()
            detail = "dropped"
            try:
                await self._assert_policy(call, connection)
                return await self._read(call, connection, attachment)
            except SidebandClosed as closed:
                if closed.reason == "unknown_call":  # 4404 once accepted: as a 404
                    return "ended" if closed_normally else "unknown_call"
                # A normal close too: confirmed by the next attach (404), else a drop.
                closed_normally = closed_normally or closed.reason == "ended"
                detail = closed.detail
            except SidebandFlooded:
                log.warning("sideband_flooding", call_id=record.call_id, kind=record.kind)
                if await self.hang_up(call, "flood"):
                    return "flood"
                detail = "flooding"
            except Exception as fault:
                # Never mistake a fault here for the call's end: the call goes on,
                # so supervision does too, on a fresh sideband. Its type and place
                # only: a stack can be thousands of frames deep.
                log.error(
                    "call_supervision_fault",
                    call_id=record.call_id,
                    error=type(fault).__name__,
                    at=fault_site(fault),
                )
                detail = "fault"
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
            await attempts.closed(attachment, detail)

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

    async def _read(
        self, call: Watched, connection: SidebandConnection, attachment: Attachment
    ) -> How:
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
            attachment.events += 1
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
                return await self._meter.response_done(call, event)
            hung_up = await self._overrides.realtime_event(call, connection, event)
            return "override" if hung_up else None
        elif event_type == TRANSCRIBED and kind == "realtime":
            return await self._meter.transcribed(call, event)
        elif event_type in ("session.usage.updated", "session.closed") and kind == "live":
            how = await self._meter.live_usage(call, event.get("usage"))
            return "ended" if event_type == "session.closed" else how
        return None

    async def _answer_turn(
        self, call: Watched, connection: SidebandConnection, tag: str
    ) -> How | None:
        """`CALLS_RESPONSES=server`: a committed user turn gets the supervisor's marked
        `response.create`, once the budgets are checked: a call past its own dollars
        (`budget`), a caller whose tokens, seconds or dollars are spent (`quota`), or a
        deployment past its ceiling (`ceiling`) is hung up instead, as when usage
        crosses them; so no response starts past a budget.

        The check reads the counters in one round trip; a store that cannot answer
        does not stop the call (as usage that cannot be counted), it is logged.
        """
        record = call.record
        limits = self._spend.limits(record)
        if limits.call is not None and call.counted_micro >= limits.call:
            return await self._turn_refused(call, "budget")
        keys = UsageKeys(record.owner, day_of(self._clock()))
        ceiling = deployment_usd_key(keys.day)
        settings = self._settings
        quotas = {
            keys.tokens: settings.quota_tokens_per_day,
            keys.seconds: settings.quota_call_seconds_per_day,
            keys.usd: limits.caller_day,
            ceiling: limits.deployment_day,
        }
        checked = [key for key, quota in quotas.items() if quota is not None]
        try:
            totals = await self._counters.counts(checked) if checked else []
        except StoreUnavailable:
            log.warning("call_quota_unchecked", call_id=record.call_id)
        else:
            spent = [
                key for key, total in zip(checked, totals, strict=True) if over(total, quotas[key])
            ]
            if spent:
                return await self._turn_refused(call, "ceiling" if ceiling in spent else "quota")
        await connection.send(response_create(tag, record.call_id, self._clock()))
        metrics.CALL_TURNS.labels("answered").inc()
        return None

    async def _turn_refused(self, call: Watched, how: How) -> How | None:
        """A turn past a budget: no response, the call hung up (`rtp_call_turns_total{quota}`)."""
        metrics.CALL_TURNS.labels("quota").inc()
        if await self.hang_up(call, how):
            return how
        return None

    async def _write(self, call: Watched) -> None:
        """The record's new state, now: its owner is watching. Left for the keeper's next
        pass too (`changed`), which rewrites it after a failed or out-of-order write."""
        call.changed = True
        try:
            await self._records.update([call.record])
        except StoreUnavailable:
            log.warning("call_state_unrecorded", call_id=call.record.call_id)

    async def flush(self) -> None:
        """Wait for the usage writes in flight (before a hand-over)."""
        await self._meter.flush()

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
