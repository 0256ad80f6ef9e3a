"""The supervisor: keeps every call the service created true to the policy until hang-up.

One per worker, started in the lifespan. For each call it holds the call's
sideband (`service.upstream.sideband`) and:

- on every `session.updated`, compares what the policy fixed
  (`service.calls.fixed`) and, by `CALLS_ON_OVERRIDE`, sends the
  `session.update` that restores exactly those fields (`revert`) or hangs up
  (`hangup`); either way the audit line `call_policy_override` names the
  call, the caller and the fields, never their content;
- hangs up at `CALLS_MAX_SECONDS`;
- sums usage (tokens from `response.done`; seconds) per caller and UTC day,
  and hangs up a call whose caller crosses `QUOTA_TOKENS_PER_DAY` or
  `QUOTA_CALL_SECONDS_PER_DAY`;
- reconnects with backoff when the sideband drops while the call lives.

**No call loses its supervisor.** Each call holds a lease in the shared
store, renewed by its worker every third of `CALLS_LEASE_SECONDS`. A worker
that finds a lease expired (its worker died) claims it, reads the call's
record and attaches. At shutdown a worker releases its leases at once, so the
others take its calls over without waiting. With the memory store there is
no other worker to take over: calls continue unsupervised across a restart
(logged at start-up).

**Privacy.** Events carry transcripts; only their types, sizes and usage
numbers are read into logs, metrics or the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import structlog

from service.calls.fixed import overridden, restoring, revertible
from service.calls.records import CallRecord, CallRecords, owner_of
from service.calls.usage import COUNTER_TTL_MS, UsageKeys, day_of
from service.config import Settings
from service.contract.calls import CallKind
from service.core import metrics
from service.core.errors import NotFound, RateLimited, ServiceError
from service.store import Store, StoreUnavailable
from service.upstream import Upstream
from service.upstream.calls import hang_up
from service.upstream.sideband import Sideband, SidebandClosed, SidebandConnection

log = structlog.get_logger("service.calls")
CONNECT_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 10.0
HANGUP_RETRY_S = 1.0
ORPHANS_PER_SWEEP = 200
MAX_REVERTS_PER_MINUTE = 10
How = Literal["ended", "unknown_call", "closed", "max_duration", "override", "quota", "hung_up"]


def now_ms() -> int:
    return int(time.time() * 1000)


def backoff(attempt: int) -> float:
    """Full jitter, 0.25 s doubling to `BACKOFF_MAX_S`."""
    return random.uniform(0, min(BACKOFF_MAX_S, 0.25 * 2**attempt))  # noqa: S311 - jitter


@dataclass(slots=True, eq=False)
class Watched:
    """A call this worker supervises now, and its usage not yet written to the store."""

    record: CallRecord
    task: asyncio.Task[None] | None = None
    metered_ms: int = field(default_factory=now_ms)
    unmetered_ms: int = 0
    live_seconds: float | None = 0.0
    """GPT-Live's cumulative `usage.seconds` counted so far. After a hand-over it is what
    the previous worker counted; after a crash None, until the first report sets the
    baseline (what the previous worker counted is unknown: never count it twice)."""
    recorded: bool = True
    """Whether the call's record is in the store; if not, the keeper writes it."""
    reverts: list[int] = field(default_factory=list)
    """When the recent reverts were sent (ms), to stop a revert loop."""
    owner: str = ""
    """The caller as usage keys name it (hashed once, not on every meter pass)."""

    def __post_init__(self) -> None:
        self.owner = self.record.owner


class Supervisor:
    """Supervises this worker's calls; see the module docstring."""

    def __init__(
        self, settings: Settings, sideband: Sideband, upstream: Upstream, store: Store
    ) -> None:
        self._settings = settings
        self._sideband = sideband
        self._upstream = upstream
        self._store = store
        self.records = CallRecords(store)
        """The calls' records, in the same store as the supervisor's leases."""
        self._lease_ms = int(settings.calls_lease_seconds * 1000)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._watched: dict[str, Watched] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()
        self._ending: set[Watched] = set()
        self._fail_open = settings.rate_limit_on_store_error == "open"

    # Lifecycle.

    async def start(self) -> None:
        """Start keeping leases, metering usage and adopting orphaned calls."""
        if not self._settings.redis_url:
            log.info(
                "calls_supervised_locally",
                note="no REDIS_URL: each worker supervises its own calls, and calls "
                "continue unsupervised across a restart",
            )
        self._keeper = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        """Hand every call over at once (release the leases); the calls go on."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        for chore in list(self._chores):
            chore.cancel()
        watched = list(self._watched.values())
        for call in watched:
            if call.task is not None:
                call.task.cancel()
        await asyncio.gather(
            *(call.task for call in watched if call.task is not None), return_exceptions=True
        )
        with contextlib.suppress(StoreUnavailable):
            await self._meter_calls(watched, enforce=False)
            for call in watched:
                if call.record.kind == "live" and call.live_seconds is not None:
                    call.record.counted_seconds = call.live_seconds
                    await self.records.record(call.record)
            await self._store.release([call.record.member for call in watched], self.worker)
        if watched:
            log.info("calls_handed_over", calls=len(watched))
        self._watched.clear()

    @property
    def supervised(self) -> int:
        """How many calls this worker supervises now."""
        return len(self._watched)

    # Admission, before a call is created.

    async def admit(self, identity: str, kind: CallKind, member: str) -> str | None:
        """Check the caller's daily quotas and take a live-call slot; 429 otherwise.

        Returns the slot member to record with the call (None without
        `CALLS_MAX_CONCURRENT_PER_IDENTITY`). Give it back with `unadmit`
        if the call is not created.
        """
        settings = self._settings
        keys = UsageKeys(owner_of(identity), day_of(now_ms()))
        try:
            if settings.quota_tokens_per_day or settings.quota_call_seconds_per_day:
                tokens, seconds = await self._store.counts([keys.tokens, keys.seconds])
                spent = (kind == "realtime" and _over(tokens, settings.quota_tokens_per_day)) or (
                    _over(seconds, settings.quota_call_seconds_per_day)
                )
                if spent:
                    raise RateLimited(
                        "This caller's daily call budget is spent; it resets at 00:00 UTC.",
                        code="quota_exceeded",
                        headers={"Retry-After": str(_seconds_to_midnight())},
                    )
            limit = settings.calls_max_concurrent_per_identity
            if limit is None:
                return None
            ttl_ms = (settings.calls_max_seconds + 60) * 1000
            if not await self._store.reserve(keys.slots, member, limit, ttl_ms):
                raise RateLimited(
                    f"This caller already has {limit} live calls; hang one up first.",
                    code="too_many_calls",
                    headers={"Retry-After": "5"},
                )
        except StoreUnavailable:
            if self._fail_open:
                log.error("call_admission_unchecked", reason="store unavailable")
                return None
            raise
        return member

    async def unadmit(self, identity: str, slot: str | None) -> None:
        """Give back a slot taken for a call that was not created."""
        if slot is not None:
            with contextlib.suppress(StoreUnavailable):
                await self._store.unreserve(UsageKeys(owner_of(identity), "").slots, slot)

    async def usage(self, identity: str) -> dict[str, Any]:
        """The caller's usage today and their limits (`GET /v1/usage`)."""
        settings = self._settings
        keys = UsageKeys(owner_of(identity), day_of(now_ms()))
        tokens, seconds = await self._store.counts([keys.tokens, keys.seconds])
        return {
            "date": keys.day,
            "usage": {
                "tokens": tokens,
                "call_seconds": seconds,
                "live_calls": await self._store.occupancy(keys.slots),
            },
            "limits": {
                "tokens_per_day": settings.quota_tokens_per_day,
                "call_seconds_per_day": settings.quota_call_seconds_per_day,
                "concurrent_calls": settings.calls_max_concurrent_per_identity,
                "call_max_seconds": settings.calls_max_seconds,
                "mints_per_day": settings.quota_mints_per_day,
            },
        }

    # Supervision.

    async def watch(self, record: CallRecord, recorded: bool = True) -> None:
        """Supervise a call this worker just created.

        `recorded`: whether its record reached the store; if not (nor its lease),
        the keeper writes both once the store answers again.
        """
        try:
            await self._store.claim(record.member, self.worker, self._lease_ms)
        except StoreUnavailable:
            log.error("call_lease_unavailable", call_id=record.call_id)
        self._adopt(record, recorded=recorded)

    def _adopt(
        self, record: CallRecord, *, recorded: bool = True, taken_over: bool = False
    ) -> None:
        counted = record.counted_seconds if taken_over else 0.0
        watched = Watched(record, recorded=recorded, live_seconds=counted)
        self._watched[record.member] = watched
        metrics.CALLS_SUPERVISED.inc()
        watched.task = asyncio.create_task(self._run(watched), name=f"supervise {record.member}")

    async def _run(self, call: Watched) -> None:
        how: How | None = None
        try:
            how = await self._follow(call)
        except asyncio.CancelledError:
            raise  # handed over or taken over: the call goes on without us
        except Exception:
            # Outside the sideband loop (which survives its own faults): the
            # record and slot are left for another worker's takeover.
            log.exception("call_supervision_failed", call_id=call.record.call_id)
        finally:
            if self._watched.pop(call.record.member, None) is not None:
                metrics.CALLS_SUPERVISED.dec()
            if how is not None:
                await self._finish(call, how)

    async def _follow(self, call: Watched) -> How:
        """Attach, and re-attach after drops, until the call ends or is hung up."""
        record = call.record
        attempt = 0
        while True:
            left_s = (record.deadline_ms - now_ms()) / 1000
            if left_s <= 0 and await self._hang_up(call, "max_duration"):
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
            left_s = (call.record.deadline_ms - now_ms()) / 1000
            try:
                async with asyncio.timeout(max(0.0, left_s)):
                    event = await connection.recv()
            except TimeoutError:
                if await self._hang_up(call, "max_duration"):
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
        elif event_type == "response.done" and kind == "realtime":
            return await self._tokens(call, event)
        elif event_type in ("session.usage.updated", "session.closed") and kind == "live":
            usage = event.get("usage")
            seconds = usage.get("seconds") if isinstance(usage, Mapping) else None
            if isinstance(seconds, int | float) and not isinstance(seconds, bool):
                if call.live_seconds is not None and seconds > call.live_seconds:
                    call.unmetered_ms += int((seconds - call.live_seconds) * 1000)
                call.live_seconds = max(float(seconds), call.live_seconds or 0.0)
            if event_type == "session.closed":
                return "closed"
        return None

    async def _check(
        self, call: Watched, connection: SidebandConnection, session: Mapping[str, Any]
    ) -> How | None:
        """Compare a `session.updated` with what the policy fixed; revert or hang up."""
        record = call.record
        paths = overridden(record.fixed, session)
        if not paths:
            return None
        action = self._settings.calls_on_override
        metrics.CALL_OVERRIDES.labels(action).inc()
        log.warning(
            "call_policy_override",
            call_id=record.call_id,
            kind=record.kind,
            identity=record.identity,
            fields=paths,
            action=action,
        )
        if action == "revert" and revertible(paths) and not self._looping(call):
            await connection.send(restoring(record.kind, record.fixed, paths))
            return None
        if await self._hang_up(call, "override"):
            return "override"
        return None

    def _looping(self, call: Watched) -> bool:
        """More than `MAX_REVERTS_PER_MINUTE` reverts: the session will not hold; stop trying."""
        now = now_ms()
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
        keys = UsageKeys(call.owner, day_of(now_ms()))
        try:
            total = (await self._store.add({keys.tokens: tokens}, COUNTER_TTL_MS))[keys.tokens]
        except StoreUnavailable:
            log.error("call_usage_unrecorded", call_id=call.record.call_id, tokens=tokens)
            return None
        if _over(total, self._settings.quota_tokens_per_day) and await self._hang_up(call, "quota"):
            return "quota"
        return None

    async def _hang_up(self, call: Watched, reason: str) -> bool:
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

    async def _finish(self, call: Watched, how: How) -> None:
        """The call is over: its last usage written, its slot, lease and record gone."""
        record = call.record
        metrics.CALL_ENDINGS.labels(how).inc()
        log.info(
            "call_supervision_ended",
            call_id=record.call_id,
            kind=record.kind,
            how=how,
            seconds=round((now_ms() - record.started_ms) / 1000, 1),
        )
        try:
            await self._meter_calls([call])
            await self._store.drop(record.member)
            if record.slot is not None:
                await self._store.unreserve(UsageKeys(record.owner, "").slots, record.slot)
            await self.records.forget(record.kind, record.call_id)
        except StoreUnavailable:
            log.error("call_end_unrecorded", call_id=record.call_id)

    # The keeper: leases, usage, orphans.

    async def _keep(self) -> None:
        interval = self._lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
                await self._meter()
                await self._adopt_orphans()
            except StoreUnavailable:
                log.warning("call_store_unavailable", calls=len(self._watched))
            except Exception:
                log.exception("call_keeper_failed")

    async def _renew(self) -> None:
        for call in list(self._watched.values()):
            if not call.recorded:
                await self.records.record(call.record)
                call.recorded = True
        members = list(self._watched)
        for member in await self._store.renew(members, self.worker, self._lease_ms):
            lost = self._watched.get(member)
            if lost is not None and lost.task is not None:
                log.info("call_taken_over_elsewhere", call_id=lost.record.call_id)
                lost.task.cancel()

    async def _meter(self) -> None:
        """Write the seconds of every call since the last meter, and enforce the seconds quota."""
        await self._meter_calls(list(self._watched.values()))

    async def _meter_calls(self, calls: list[Watched], enforce: bool = True) -> None:
        """One pass over thousands of calls: one day, one store round trip, one metric each."""
        now = now_ms()
        day = day_of(now)
        per_caller: dict[str, int] = defaultdict(int)
        per_kind: dict[str, int] = defaultdict(int)
        callers: dict[str, list[Watched]] = defaultdict(list)
        for call in calls:
            if call.record.kind == "realtime":
                call.unmetered_ms += now - call.metered_ms
            call.metered_ms = now
            seconds, call.unmetered_ms = divmod(call.unmetered_ms, 1000)
            key = UsageKeys(call.owner, day).seconds
            callers[key].append(call)
            if seconds:
                per_caller[key] += seconds
                per_kind[call.record.kind] += seconds
        for kind, seconds in per_kind.items():
            metrics.USAGE_SECONDS.labels(kind).inc(seconds)
        if not per_caller:
            return
        totals = await self._store.add(per_caller, COUNTER_TTL_MS)
        quota = self._settings.quota_call_seconds_per_day
        for key, total in totals.items():
            if enforce and _over(total, quota):
                for call in callers[key]:
                    if call.record.member in self._watched and call not in self._ending:
                        # Off the keeper: its lease renewals must never wait on OpenAI.
                        self._ending.add(call)
                        chore = asyncio.create_task(self._quota_hang_up(call))
                        self._chores.add(chore)
                        chore.add_done_callback(self._chores.discard)

    async def _quota_hang_up(self, call: Watched) -> None:
        try:
            if not await self._hang_up(call, "quota"):
                return
            if self._watched.pop(call.record.member, None) is None:
                return  # the call's own task finished it meanwhile
            metrics.CALLS_SUPERVISED.dec()
            if call.task is not None:
                call.task.cancel()
            await self._finish(call, "quota")
        finally:
            self._ending.discard(call)

    async def _adopt_orphans(self) -> None:
        """Take over calls whose supervisor is gone (their lease expired)."""
        for member in await self._store.orphans(ORPHANS_PER_SWEEP):
            if member in self._watched:
                continue
            if not await self._store.claim(member, self.worker, self._lease_ms):
                continue
            kind, _, call_id = member.partition(":")
            record = None
            if kind == "realtime":
                record = await self.records.get("realtime", call_id)
            elif kind == "live":
                record = await self.records.get("live", call_id)
            if record is None:
                await self._store.drop(member)
                continue
            metrics.CALL_TAKEOVERS.inc()
            log.info("call_taken_over", call_id=call_id, kind=kind, worker=self.worker)
            self._adopt(record, taken_over=True)
            if record.counted_seconds is not None:
                # Used once: if this worker dies too, its successor must not count from
                # this stale figure, and takes its baseline from the next report instead.
                await self.records.record(replace(record, counted_seconds=None))


def _over(total: int, quota: int | None) -> bool:
    return quota is not None and total >= quota


def _seconds_to_midnight() -> int:
    return max(1, (86_400_000 - now_ms() % 86_400_000) // 1000)
