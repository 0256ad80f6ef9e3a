"""The per-call loop: one call's sideband, followed until the call ends or is hung up.

For each call the supervisor runs `CallLoop.follow`, which

- attaches to the call's sideband (`service.upstream.sideband`) and restates
  what the policy fixed on every attach;
- on every `session.updated`, compares what the policy fixed
  (`service.calls.fixed`) and, for Realtime calls, evaluates every other rule
  of the caller's policy (`service.calls.breaches`); by `CALLS_ON_OVERRIDE`
  it sends the one `session.update` that restores exactly those fields
  (`revert`) or hangs up (`hangup`);
- on a Realtime call's `response.created`, cancels a response whose voice,
  modalities or token cap the policy does not allow; on
  `response.output_item.added`, cancels a response calling a tool the policy
  does not offer; on `conversation.item.added`/`.created`, deletes a system
  or developer message while the server sets the instructions (or, with
  `hangup`, hangs up);
- audits each override in the line `call_policy_override` (the call, the
  caller, its `scope`, the fields and the `action` done: `revert`, `cancel`,
  `delete` or `hangup`; never content), counts it in
  `rtp_call_overrides_total{scope,action}`, and writes it into the call's
  record at once with each `session.updated` that shows the policy's value
  again (`service.calls.state`: its owner is watching). Every revert, cancel
  and delete counts towards `MAX_REVERTS_PER_MINUTE`, past which the call is
  hung up: it will not keep the policy;
- hangs up at `CALLS_MAX_SECONDS`;
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
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from service.calls.breaches import (
    Breach,
    foreign_instructions,
    readable,
    response_breaches,
    session_breaches,
    size_of,
    tool_breach,
)
from service.calls.fixed import overridden, restoring, revertible
from service.calls.records import CallRecord, CallRecords, Outcome, Scope
from service.calls.state import noted, settled
from service.calls.usage import COUNTER_TTL_MS, UsageKeys, over
from service.config import Settings
from service.core import metrics
from service.core.clock import Clock, day_of
from service.core.errors import NotFound, ServiceError
from service.policy import Policy
from service.store import Counters, StoreUnavailable
from service.upstream import Upstream
from service.upstream.calls import hang_up
from service.upstream.sideband import Sideband, SidebandClosed, SidebandConnection

log = structlog.get_logger("service.calls")
CONNECT_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 10.0
HANGUP_RETRY_S = 1.0
MAX_REVERTS_PER_MINUTE = 10
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
DEFAULT_PROFILE = "default"
Action = Literal["revert", "cancel", "delete", "hangup"]
"""What the supervisor did about an override, as its audit line and
`rtp_call_overrides_total{scope,action}` say."""
ACTED: dict[Action, Outcome] = {"cancel": "cancelled", "delete": "deleted"}
How = Literal["ended", "unknown_call", "max_duration", "override", "quota"]
"""How a supervised call ended, as `rtp_calls_ended_total{how}` counts it. `ended`: it
ended upstream (a hang-up, the browser leaving, Live's `session.closed`), the same
for both kinds of call."""


def backoff(attempt: int) -> float:
    """Full jitter, 0.25 s doubling to `BACKOFF_MAX_S`."""
    return random.uniform(0, min(BACKOFF_MAX_S, 0.25 * 2**attempt))  # noqa: S311 - jitter


@dataclass(slots=True, eq=False)
class Watched:
    """A call this worker supervises now, and its usage not yet written to the store."""

    record: CallRecord
    metered_ms: int
    """When the keeper last metered the call's seconds (on the supervisor's clock)."""
    task: asyncio.Task[None] | None = None
    unmetered_ms: int = 0
    live_seconds: float | None = 0.0
    """GPT-Live's cumulative `usage.seconds` counted so far. After a hand-over it is what
    the previous worker counted; after a crash None, until the first report sets the
    baseline (what the previous worker counted is unknown: never count it twice)."""
    reverts: list[int] = field(default_factory=list)
    """When the recent reverts, cancels and deletes were sent (ms), to stop a revert loop."""
    acted: set[str] = field(default_factory=set)
    """The responses cancelled and items deleted (ids): each is acted on once."""
    own_items: set[str] = field(default_factory=set)
    """Ids of the items the service itself created (system messages it may send)."""
    changed: bool = False
    """The record holds state (usage, overrides) the store may not have yet: the keeper's
    next pass writes it."""


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
    ) -> None:
        self._settings = settings
        self._sideband = sideband
        self._upstream = upstream
        self._counters = counters
        self._records = records
        self._clock = clock
        self._policies = dict(settings.profiles.all())
        self._rules = {
            name: policy.model_copy(update={"on_violation": "clamp"})
            for name, policy in self._policies.items()
        }

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
            await connection.send(restoring(call.record.kind, fixed, paths))

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
                return await self._check(call, connection, session)
        elif kind == "realtime" and event_type in REALTIME_CHECKED:
            if event_type == "response.done":
                return await self._tokens(call, event)
            return await self._check_realtime(call, connection, event)
        elif event_type in ("session.usage.updated", "session.closed") and kind == "live":
            usage = event.get("usage")
            seconds = usage.get("seconds") if isinstance(usage, Mapping) else None
            if isinstance(seconds, int | float) and not isinstance(seconds, bool):
                if call.live_seconds is not None and seconds > call.live_seconds:
                    call.unmetered_ms += int((seconds - call.live_seconds) * 1000)
                call.live_seconds = max(float(seconds), call.live_seconds or 0.0)
                if seconds > call.record.usage_seconds:
                    call.record.usage_seconds = float(seconds)
                    call.changed = True
            if event_type == "session.closed":
                return "ended"
        return None

    async def _check(
        self, call: Watched, connection: SidebandConnection, session: Mapping[str, Any]
    ) -> How | None:
        """Compare a `session.updated` with the policy (what it fixed, then every rule);
        restore every breached field in one `session.update`, or hang up."""
        record = call.record
        paths = overridden(record.fixed, session)
        breaches = self._breaches(call, session) if record.kind == "realtime" else []
        fields = [*paths, *(breach.field for breach in breaches)]
        now = self._clock()
        reverted = settled(record, fields, now)
        if not fields:
            if reverted:
                await self._write(call)
            return None
        if (
            self._settings.calls_on_override == "revert"
            and revertible(paths)
            and not self._looping(call)
        ):
            self._audit(call, "session", fields, "revert")
            values = {**record.fixed, **{breach.path: breach.value for breach in breaches}}
            restore = [*paths, *(breach.path for breach in breaches)]
            await connection.send(restoring(record.kind, values, restore))
            noted(record, fields, now, "reverting")
            await self._write(call)
            return None
        return await self._hang_up_for(call, "session", fields)

    def _policy(self, call: Watched) -> tuple[Policy, Policy]:
        """The caller's policy, and the same with `on_violation=clamp` (for `evaluate`).

        A profile this worker does not know (a call adopted from a worker with
        another configuration) is checked against the base policy.
        """
        profile = call.record.profile
        if profile not in self._policies:
            profile = DEFAULT_PROFILE
        return self._policies[profile], self._rules[profile]

    def _breaches(self, call: Watched, session: Mapping[str, Any]) -> list[Breach]:
        record = call.record
        request, unread = readable(session, record.fixed)
        if unread:
            # Names only: which fields this version's contract could not judge.
            log.warning("call_session_fields_unread", call_id=record.call_id, fields=unread)
        if request is None:
            return []
        policy, rules = self._policy(call)
        try:
            return session_breaches(
                rules, policy.on_violation, request, record.fixed, record.created, record.caller
            )
        except Exception:
            # A fault in the rules must not stop the fixed fields' reverts: those go on.
            log.exception("call_policy_check_failed", call_id=record.call_id)
            return []

    async def _check_realtime(
        self, call: Watched, connection: SidebandConnection, event: Mapping[str, Any]
    ) -> How | None:
        """A response, an item or a tool call against the policy: cancel, delete, or hang up."""
        policy, _ = self._policy(call)
        event_type = event.get("type")
        if event_type == "response.created":
            response = event.get("response")
            if not isinstance(response, Mapping):
                return None
            fields = response_breaches(policy, call.record.fixed, response)
            if fields:
                return await self._cancel(call, connection, "response", fields, response.get("id"))
            return None
        item = event.get("item")
        if not isinstance(item, Mapping):
            return None
        if event_type == "response.output_item.added":
            field_name = tool_breach(policy, item)
            if field_name is not None:
                facts = {"item_type": item.get("type")}
                response_id = event.get("response_id")
                fields = [field_name]
                return await self._cancel(call, connection, "tool", fields, response_id, facts)
            return None
        item_id = item.get("id")
        if item_id in call.acted or not foreign_instructions(policy, item, call.own_items):
            return None
        facts = {"item_type": item.get("type"), "role": item.get("role"), "size": size_of(item)}
        if not isinstance(item_id, str):
            return await self._hang_up_for(call, "item", ["role"], facts)
        call.acted.add(item_id)
        delete = {"type": "conversation.item.delete", "item_id": item_id}
        return await self._act(call, connection, "item", ["role"], delete, facts)

    async def _cancel(
        self,
        call: Watched,
        connection: SidebandConnection,
        scope: Scope,
        fields: list[str],
        response_id: object,
        facts: Mapping[str, Any] | None = None,
    ) -> How | None:
        """Cancel a response for `fields` (once per response), or hang up."""
        if not isinstance(response_id, str):
            return await self._hang_up_for(call, scope, fields, facts)
        if response_id in call.acted:
            return None
        call.acted.add(response_id)
        cancel = {"type": "response.cancel", "response_id": response_id}
        return await self._act(
            call, connection, scope, fields, cancel, {**(facts or {}), "response_id": response_id}
        )

    async def _act(
        self,
        call: Watched,
        connection: SidebandConnection,
        scope: Scope,
        fields: list[str],
        action: Mapping[str, Any],
        facts: Mapping[str, Any],
    ) -> How | None:
        """Send `action` (a cancel or a delete), counted by the revert-loop guard; or, with
        `CALLS_ON_OVERRIDE=hangup` or a call that keeps breaking the policy, hang up."""
        if self._settings.calls_on_override == "hangup" or self._looping(call):
            return await self._hang_up_for(call, scope, fields, facts)
        done: Action = "cancel" if action["type"] == "response.cancel" else "delete"
        self._audit(call, scope, fields, done, facts)
        await connection.send(action)
        noted(call.record, fields, self._clock(), ACTED[done], scope)
        await self._write(call)
        return None

    async def _hang_up_for(
        self,
        call: Watched,
        scope: Scope,
        fields: list[str],
        facts: Mapping[str, Any] | None = None,
    ) -> How | None:
        """End the call for an override, audited as a hang-up."""
        self._audit(call, scope, fields, "hangup", facts)
        # Not written first: the hang-up must not wait on the store, and once it is done
        # the record goes. If it fails the call lives on, and the keeper writes this.
        noted(call.record, fields, self._clock(), "hung_up", scope)
        call.changed = True
        if await self.hang_up(call, "override"):
            return "override"
        return None

    def _audit(
        self,
        call: Watched,
        scope: Scope,
        fields: list[str],
        action: Action,
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        """The audit line and metric of one override: names, ids and sizes, never content."""
        record = call.record
        metrics.CALL_OVERRIDES.labels(scope, action).inc()
        log.warning(
            "call_policy_override",
            call_id=record.call_id,
            kind=record.kind,
            identity=record.caller,
            scope=scope,
            fields=fields,
            action=action,
            **(facts or {}),
        )

    async def _write(self, call: Watched) -> None:
        """The record's new state, now: its owner is watching. Left for the keeper's next
        pass too (`changed`), which rewrites it after a failed or out-of-order write."""
        call.changed = True
        try:
            await self._records.update([call.record])
        except StoreUnavailable:
            log.warning("call_state_unrecorded", call_id=call.record.call_id)

    def _looping(self, call: Watched) -> bool:
        """More than `MAX_REVERTS_PER_MINUTE` reverts: the session will not hold; stop trying."""
        now = self._clock()
        call.reverts = [at for at in call.reverts if now - at < 60_000]
        call.reverts.append(now)
        if len(call.reverts) <= MAX_REVERTS_PER_MINUTE:
            return False
        log.warning("call_override_loop", call_id=call.record.call_id, reverts=len(call.reverts))
        return True

    async def _tokens(self, call: Watched, event: Mapping[str, Any]) -> How | None:
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, Mapping) else None
        tokens = usage.get("total_tokens") if isinstance(usage, Mapping) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
            return None
        metrics.USAGE_TOKENS.inc(tokens)
        call.record.tokens += tokens
        call.changed = True
        key = UsageKeys(call.record.owner, day_of(self._clock())).tokens
        try:
            total = (await self._counters.add({key: tokens}, COUNTER_TTL_MS))[key]
        except StoreUnavailable:
            log.error("call_usage_unrecorded", call_id=call.record.call_id, tokens=tokens)
            return None
        quota = self._settings.quota_tokens_per_day
        if over(total, quota) and await self.hang_up(call, "quota"):
            return "quota"
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
