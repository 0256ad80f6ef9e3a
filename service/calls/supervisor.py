"""The supervisor: every call the service creates, from admission to its end, true to the policy.

One per worker, started in the lifespan. A flow hands it a new call once
(`open_call`), or a phone call OpenAI announced (`accept_call`): `intake`
admits, creates or accepts and records it, and the supervisor follows it
(`loop`) until it ends, one task per call id; the keeper (`keeper`) renews leases, meters
usage, takes the slots owed after an outage and adopts orphaned calls on its
own schedule. A hang-up through the service (`hang_up`), and what the
service does for the call (`state`), are its creator's alone.

**Privacy.** Events carry transcripts; only their types, sizes and usage
numbers are read into logs, metrics or the store. Records hold no MCP
credentials (`service.calls.sealed`): a worker adopting a call resolves its
MCP tools from the caller's policy before it attaches (every attach restates
them), and hangs up a call whose tools it cannot resolve (the server is no
longer offered as the call was created with it): it could not restore them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Coroutine
from typing import Any, get_args

import structlog

from service.billing.cost import PICO_PER_MICRO
from service.calls.admission import Admission
from service.calls.endings import How
from service.calls.intake import Intake, NewCall
from service.calls.keeper import Keeper
from service.calls.loop import CallLoop
from service.calls.overrides import DEFAULT_PROFILE
from service.calls.reattach import fault_site
from service.calls.records import CallRecord, CallRecords, owner_of
from service.calls.report import CallerCalls, DayReport
from service.calls.reserves import still_held
from service.calls.sealed import definitions, resolved
from service.calls.spend import Ceiling, Spend, usd
from service.calls.state import CallState, noted, state_of
from service.calls.watched import Watched
from service.config import Settings
from service.contract.calls import CALL_ID, CallKind
from service.core import metrics
from service.core.clock import Clock, day_of, wall_ms
from service.core.errors import NotFound
from service.limits import Suspensions
from service.store import Store, StoreUnavailable
from service.upstream import Upstream
from service.upstream.calls import CreatedCall, hang_up
from service.upstream.sideband import Sideband

log = structlog.get_logger("service.calls")
KEEPER_STOP_S = 5.0
"""The longest a stopping worker waits for its keeper's pass, then for its calls' tasks,
before handing over."""


class Supervisor:
    """This worker's calls; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        sideband: Sideband,
        upstream: Upstream,
        store: Store,
        clock: Clock = wall_ms,
        suspensions: Suspensions | None = None,
    ) -> None:
        self._settings = settings
        self._suspensions = suspensions
        self._upstream = upstream
        self._clock = clock
        self._store = store
        self._records = CallRecords(store)
        self._admission = Admission(settings, store, store, clock)
        self._spend = Spend(settings)
        ceiling = Ceiling()
        self._loop = CallLoop(
            settings, sideband, upstream, store, self._records, clock, self._spend, ceiling
        )
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._keeper = Keeper(
            settings, store, store, store, self._records, self.worker, clock, self._spend, ceiling
        )
        self._report = DayReport(store, store)
        self._calls_of = CallerCalls(store, store)
        self._watched: dict[str, Watched] = {}
        self._keeping: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        """Every call's supervising task until it finished: one ended here (popped from
        `_watched`, cancelled) may still be closing its sideband, and `stop` waits for it."""
        self._ending: set[Watched] = set()
        self._over_cap: set[Watched] = set()
        """`CALLS_OVER_CAP_AFTER_OUTAGE=hangup`: the calls over the cap not yet hung up."""
        parts = (self._admission, self._records, self._keeper, self._spend, self._calls_of)
        self._intake = Intake(
            settings,
            upstream,
            store,
            parts,
            clock,
            lambda member: member in self._watched,
            lambda record, owes_slot: self._watch(record, owes_slot=owes_slot),
        )

    # Lifecycle.

    async def start(self) -> None:
        """Start keeping leases, metering usage and adopting orphaned calls."""
        if not self._settings.redis_url:
            log.info(
                "calls_supervised_locally",
                note="no REDIS_URL: each worker supervises its own calls, and calls "
                "continue unsupervised across a restart",
            )
        self._keeping = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        """Hand every call over at once (release the leases); the calls go on."""
        if self._keeping is not None:
            self._keeping.cancel()
            # Bounded: the hand-over below must happen before the orchestrator's SIGKILL,
            # whatever a store command in the keeper's pass is waiting on.
            done, _ = await asyncio.wait({self._keeping}, timeout=KEEPER_STOP_S)
            if not done:
                log.error("call_keeper_did_not_stop", waited_s=KEEPER_STOP_S)
        for chore in list(self._chores):
            chore.cancel()
        watched = list(self._watched.values())
        for call in watched:
            if call.task is not None:
                call.task.cancel()
        # The calls ended meanwhile too: their tasks, already cancelled, may be closing a
        # sideband; left pending, the loop's end would leave the socket open, unread.
        # Bounded as the keeper: a task that lost its cancellation must not keep the
        # hand-over from happening.
        pending = {*self._tasks, *self._chores}
        if pending:
            done, late = await asyncio.wait(pending, timeout=KEEPER_STOP_S)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: each logged its own fault
            if late:
                log.error("call_tasks_did_not_stop", tasks=len(late), waited_s=KEEPER_STOP_S)
        with contextlib.suppress(Exception):
            await self._loop.flush()  # what the calls counted last, before their leases go
        await self._keeper.hand_over(watched)
        if watched:
            log.info("calls_handed_over", calls=len(watched))
        self._watched.clear()

    @property
    def supervised(self) -> int:
        """How many calls this worker supervises now."""
        return len(self._watched)

    # What flows ask for.

    async def open_call(self, new: NewCall) -> CreatedCall:
        """Admit, create upstream, record and supervise a call (`service.calls.intake`)."""
        return await self._intake.open_call(new)

    async def accept_call(self, new: NewCall, call_id: str, line: str | None) -> float:
        """Admit, accept upstream, record and supervise a phone call; the ms OpenAI took."""
        return await self._intake.accept_call(new, call_id, line)

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (a webhook's accept) in a task this supervisor owns: off the request
        that brought it, cancelled at `stop`."""
        self._chore(work)

    async def hang_up(self, kind: CallKind, call_id: str, identity: str, request_id: str) -> None:
        """End a call for its creator; anyone else, and an unknown id, get the same 404."""
        await self._owned(kind, call_id, identity)
        try:
            await hang_up(self._upstream, kind, call_id, request_id)
        except NotFound:
            await self._records.forget(kind, call_id)  # it had already ended
            raise
        # Only now: after a failed hang-up the call lives on, and so must its record.
        await self._records.forget(kind, call_id)

    async def state(self, kind: CallKind, call_id: str, identity: str) -> CallState:
        """What the service does for a call, for its creator; anyone else gets hang-up's 404.

        From the shared store, so any worker answers for a call any worker supervises.
        """
        return state_of(await self._owned(kind, call_id, identity), self._clock())

    async def phone_call(self, call_id: str) -> CallRecord:
        """The record of a phone call the service accepted (either kind); else a 404."""
        if CALL_ID.fullmatch(call_id):
            for kind in get_args(CallKind):
                record = await self._records.get(kind, call_id)
                if record is not None and record.line is not None:
                    return record
        raise NotFound(f"No open phone call with id '{call_id}'.", code="call_not_found")

    async def _owned(self, kind: CallKind, call_id: str, identity: str) -> CallRecord:
        """The call's record if `identity` created it; else the 404 an unknown id gets, so
        that an id (they travel through browsers and logs) tells no one else anything."""
        record = await self._records.get(kind, call_id) if CALL_ID.fullmatch(call_id) else None
        if record is None or record.owner != owner_of(identity):
            raise NotFound(f"No open call with id '{call_id}'.", code="call_not_found")
        return record

    async def usage(self, identity: str) -> dict[str, Any]:
        """The caller's usage today, their live calls' dollars and their limits
        (`GET /v1/usage`)."""
        owner = owner_of(identity)
        usage = await self._admission.usage(owner)
        usage["calls"] = await self._calls_of.costs(owner)
        return usage

    # Following calls.

    def _watch(
        self, record: CallRecord, *, taken_over: bool = False, owes_slot: bool = False
    ) -> None:
        if record.member in self._watched:
            # One task per call, always: a second would double its usage and its
            # hang-ups, and the first task's end would unwatch the second's call.
            log.error("call_already_supervised", call_id=record.call_id, kind=record.kind)
            return
        counted = record.counted_seconds if taken_over else 0.0
        # Used once (`Keeper.orphans`): the record this worker writes from now on must
        # not hand the figure to a successor after a crash.
        record.counted_seconds = None
        unresolved = self._resolve(record) if taken_over else []
        watched = Watched(record, self._clock(), live_seconds=counted, owes_slot=owes_slot)
        watched.transcription_model = self._spend.transcription_model(record.created)
        # What of its reserve the call still holds (after a takeover: as the store counted).
        watched.held = still_held(record.held, record.unheld)
        if taken_over:
            # Counted before this worker: the store's per-call figure (`Keeper.orphans`).
            watched.counted_micro = record.cost_micro
            watched.cost_pico = record.cost_micro * PICO_PER_MICRO
        elif record.kind == "live":
            self._start_charge(watched)
        self._watched[record.member] = watched
        metrics.CALLS_SUPERVISED.inc()
        if unresolved:
            # Not followed: its first attach would restate tools without credentials.
            log.warning(
                "call_tools_unresolvable",
                call_id=record.call_id,
                kind=record.kind,
                identity=record.caller,
                server_labels=unresolved,
            )
            noted(record, ["tools"], self._clock(), "hung_up")
            self._end_off_keeper(watched, "override", retry=True)
            return
        watched.task = asyncio.create_task(self._run(watched), name=f"supervise {record.member}")
        self._tasks.add(watched.task)
        watched.task.add_done_callback(self._tasks.discard)

    def _start_charge(self, call: Watched) -> None:
        """A GPT-Live WebRTC session is billed its start seconds at creation: counted now,
        written by the keeper's next pass."""
        cost = self._spend.live(call.record, None)
        if cost is None:
            return
        call.cost_pico = cost.pico_dollars
        call.counted_micro = call.unwritten_micro = cost.micro_dollars
        call.record.cost_micro = call.counted_micro
        self._spend.counted_live(call.record, call.counted_micro)

    def _resolve(self, record: CallRecord) -> list[str]:
        """Give an adopted record's sealed MCP tools their credentials from the caller's
        policy (the base policy for a profile this worker does not know); the labels of
        those it cannot resolve."""
        policies = dict(self._settings.profiles.all())
        policy = policies.get(record.profile) or policies[DEFAULT_PROFILE]
        known = definitions(policy)
        record.fixed, missing = resolved(record.fixed, known)
        record.created, missing_created = resolved(record.created, known)
        return list(dict.fromkeys([*missing, *missing_created]))

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` off the keeper and the calls' loops; cancelled at `stop`."""
        chore = asyncio.create_task(work)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    async def _run(self, call: Watched) -> None:
        how: How | None = None
        try:
            how = await self._loop.follow(call)
        except asyncio.CancelledError:
            raise  # handed over or taken over: the call goes on without us
        except Exception as fault:
            # Outside the sideband loop (which survives its own faults): the
            # record and slot are left for another worker's takeover. Its type
            # and place only, as the loop logs its own.
            log.error(
                "call_supervision_failed",
                call_id=call.record.call_id,
                error=type(fault).__name__,
                at=fault_site(fault),
            )
        finally:
            if self._watched.pop(call.record.member, None) is not None:
                metrics.CALLS_SUPERVISED.dec()
            if how is not None:
                await self._finish(call, how)

    async def _finish(self, call: Watched, how: How) -> None:
        """The call is over: its last usage written, what it still held released, its slot,
        lease and record gone."""
        record = call.record
        metrics.CALL_ENDINGS.labels(how).inc()
        log.info(
            "call_supervision_ended",
            call_id=record.call_id,
            kind=record.kind,
            how=how,
            seconds=round((self._clock() - record.started_ms) / 1000, 1),
            cost_usd=usd(call.counted_micro),
        )
        try:
            await self._keeper.meter([call])
            await self._index([call])
            await self._keeper.release_holds(call)
            await self._keeper.forget(call)
            await self._admission.give_back(record.owner, record.slot)
            await self._calls_of.remove(record)
            await self._intake.give_line_back(record.line, record.member)
            await self._records.forget(record.kind, record.call_id)
        except StoreUnavailable:
            log.error("call_end_unrecorded", call_id=record.call_id)

    # The keeper's schedule, and what its findings lead to.

    async def _keep(self) -> None:
        # At a fixed rate: a pass starts every `pass_ms`, whatever the last one took (a
        # store command may wait twice REDIS_TIMEOUT_SECONDS), and at once after one that
        # took longer. The takeover bound (`Keeper.takeover_ms`) counts on passes no
        # farther apart than that.
        interval = self._keeper.pass_ms / 1000
        clock = asyncio.get_running_loop().time
        due = clock()
        while True:
            due = max(due + interval, clock())
            await asyncio.sleep(due - clock())
            try:
                await self.keep()
            except StoreUnavailable:
                log.warning("call_store_unavailable", calls=len(self._watched))
            except Exception:
                log.exception("call_keeper_failed")
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancel that met a store command's own timeout can surface as that
                # timeout (asyncio.timeout in Python 3.11): stopping still means stop.
                raise asyncio.CancelledError

    async def keep(self) -> None:
        """One keeper pass: renew leases, meter usage, adopt orphans (the schedule runs it)."""
        for lost in await self._keeper.renew(list(self._watched.values())):
            if lost.task is not None:
                log.info("call_taken_over_elsewhere", call_id=lost.record.call_id)
                lost.task.cancel()
        over_cap = await self._keeper.take_owed_slots(list(self._watched.values()))
        if self._settings.calls_over_cap_after_outage == "hangup":
            # Kept until hung up: a hang-up that failed is tried again at the next pass.
            self._over_cap = {
                call
                for call in self._over_cap.union(over_cap)
                if call.record.member in self._watched
            }
            for call in self._over_cap:
                self._end_off_keeper(call, "over_cap")
        await self._keeper.write_changed(list(self._watched.values()))
        metered = await self._keeper.meter(self._watched.values())
        for over_quota in metered.over_quota:
            self._end_off_keeper(over_quota, "quota")
        for over_ceiling in metered.over_ceiling:
            self._end_off_keeper(over_ceiling, "ceiling")
        await self._index(list(self._watched.values()))
        for ended in await self._ended_by_operator(list(self._watched.values())):
            self._end_off_keeper(ended, "operator")
        for record in await self._keeper.orphans(self._watched):
            self._watch(record, taken_over=True)

    async def _index(self, calls: list[Watched]) -> None:
        """Name each call's caller in today's index (once a day per call; a call that crosses
        midnight is named on both days), for `day_usage`."""
        day = day_of(self._clock())
        for call in calls:
            if call.indexed_day != day:
                await self._report.note(call.record, day)
                call.indexed_day = day

    def now_ms(self) -> int:
        """The time by the supervisor's clock (the day its counters are keyed by)."""
        return self._clock()

    async def day_usage(self, day: str, limit: int) -> dict[str, Any]:
        """A day's spending by caller and profile (`GET /admin/usage`)."""
        return await self._report.report(day, limit)

    async def end_calls_of(self, caller: str) -> int:
        """An operator ended `caller`'s calls (`service.limits.Suspensions.end_calls`, already
        written for the other workers' next pass): this worker's go now; how many."""
        calls = [call for call in self._watched.values() if call.record.caller == caller]
        for call in calls:
            self._end_off_keeper(call, "operator")
        return len(calls)

    async def _ended_by_operator(self, calls: list[Watched]) -> list[Watched]:
        """The calls an operator ended (or whose caller they suspended) since they started."""
        if self._suspensions is None or not calls:
            return []
        endings = await self._suspensions.endings([call.record.caller for call in calls])
        return [
            call for call in calls if call.record.started_ms <= endings.get(call.record.caller, -1)
        ]

    def _end_off_keeper(self, call: Watched, how: How, *, retry: bool = False) -> None:
        """Hang `call` up in a task of its own: the keeper's lease renewals must never wait
        on OpenAI (`retry`: until it is over, for a call no loop follows, whose hang-up
        nothing else would retry)."""
        if call.record.member in self._watched and call not in self._ending:
            self._ending.add(call)
            self._chore(self._end(call, how, retry=retry))

    async def _end(self, call: Watched, how: How, *, retry: bool = False) -> None:
        try:
            while not await self._loop.hang_up(call, how):
                if not retry:
                    return
            if self._watched.pop(call.record.member, None) is None:
                return  # the call's own task finished it meanwhile
            metrics.CALLS_SUPERVISED.dec()
            if call.task is not None:
                call.task.cancel()
            await self._finish(call, how)
        finally:
            self._ending.discard(call)
