"""The keeper: what keeps every call supervised across workers, and its usage counted.

**No call loses its supervisor.** Each call holds a lease in the shared
store, renewed by its worker every third of `CALLS_LEASE_SECONDS` (one keeper
pass, `pass_ms`). A worker that finds a lease expired (its worker died)
claims it, reads the call's record and attaches. A lease runs out at most
`CALLS_LEASE_SECONDS` after its worker died (it was renewed at the latest
then), and the first pass of another worker after that adopts the call, so
adoption takes at most the lease and one pass (`takeover_ms`: 4/3 of the
lease, plus the attach). At shutdown a worker releases its leases at once,
so the others take its calls over at their next pass. With the memory store
there is no other worker to take over: calls continue unsupervised across a
restart.

A pass also takes the live-call slots of the calls admitted while the store
was down (`RATE_LIMIT_ON_STORE_ERROR=open`), writes what the store lacks (a
record or lease that could not be written while it was down), the records
whose state changed since the last pass (a call's usage and overrides, for
its owner to see), and meters every call's seconds since the last pass with
the tokens the store could not take when a response reported them (giving
back, in the same write, what they spend of the call's admission reserve:
`service.calls.reserves`), each in
one round trip for thousands of calls (the owed slots aside: one each, after
an outage). The keeper only touches the store: what to do about a lost
lease, a caller over quota or over the cap, or an orphan is the supervisor's
(`service.calls.supervisor`), so a pass never waits on OpenAI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace

import structlog

from service.calls.records import CallRecord, CallRecords
from service.calls.report import calls_key
from service.calls.reserves import reserved, restore, shrink, unheld_key
from service.calls.spend import Ceiling, Spend
from service.calls.usage import COUNTER_TTL_MS, UsageKeys, call_usd_key, over
from service.calls.watched import Watched
from service.config import Settings
from service.core import metrics
from service.core.clock import Clock, day_of
from service.limits import deployment_usd_key
from service.store import Counters, Leases, Slots, StoreUnavailable

log = structlog.get_logger("service.calls")
ORPHANS_PER_SWEEP = 200
SLOT_SLACK_MS = 60_000
"""A slot outlives its call's deadline by this much, as at admission."""


@dataclass(frozen=True, slots=True)
class Metered:
    """What a metering pass found: calls whose caller is past a daily quota, and the calls
    to end because the deployment's ceiling is reached."""

    over_quota: list[Watched]
    over_ceiling: list[Watched]


class Keeper:
    """Leases, metering and orphans, for one worker's calls."""

    def __init__(
        self,
        settings: Settings,
        leases: Leases,
        counters: Counters,
        slots: Slots,
        records: CallRecords,
        worker: str,
        clock: Clock,
        spend: Spend | None = None,
        ceiling: Ceiling | None = None,
    ) -> None:
        self._slots = slots
        self._spend = spend or Spend(settings)
        self.ceiling = ceiling or Ceiling()
        self._quota = settings.quota_call_seconds_per_day
        self._token_quota = settings.quota_tokens_per_day
        self._cap = settings.calls_max_concurrent_per_identity
        self._over_cap = settings.calls_over_cap_after_outage
        self._leases = leases
        self._counters = counters
        self._records = records
        self._worker = worker
        self._clock = clock
        self.lease_ms = int(settings.calls_lease_seconds * 1000)
        self.pass_ms = self.lease_ms // 3
        """The keeper's schedule: a pass every third of the lease, so a lease is renewed
        twice before it could lapse."""
        self.takeover_ms = self.lease_ms + self.pass_ms
        """The longest from a worker's death to another's adoption of its calls (the
        attach aside): its lease runs out, then another worker's next pass adopts."""

    async def hold(self, record: CallRecord) -> None:
        """Take the lease of a call this worker just created or adopted."""
        await self._leases.claim(record.member, self._worker, self.lease_ms)

    async def renew(self, calls: Sequence[Watched]) -> list[Watched]:
        """Heal what the store lost, extend this worker's leases; the calls another worker took.

        The store can lose a call's state: a write failed while it was down, or
        it restarted empty (or was flushed). Whatever of a live call's record,
        live-call slot and place among its caller's calls is missing is written
        again, and a lease nobody holds is taken, so within one pass the owner's
        hang-up works, the cap counts the call and another worker can adopt it.
        One round trip finds what is missing; only that is written.
        """
        for record in await self._records.missing([call.record for call in calls]):
            if not await self._records.create(record):
                # Another creation, answered with this id while the store was down,
                # recorded it first: never overwrite another caller's record.
                log.error("call_id_reused", call_id=record.call_id, kind=record.kind)
                continue
            log.warning("call_state_restored", call_id=record.call_id, kind=record.kind)
            left_ms = record.deadline_ms - self._clock() + SLOT_SLACK_MS
            if record.slot is not None:
                await self._slots.restore(UsageKeys(record.owner, "").slots, record.slot, left_ms)
            await self._slots.restore(calls_key(record.owner), record.member, left_ms)
        members = [call.record.member for call in calls]
        lost = set(await self._leases.renew(members, self._worker, self.lease_ms))
        return [call for call in calls if call.record.member in lost]

    async def take_owed_slots(self, calls: Sequence[Watched]) -> list[Watched]:
        """Take the live-call slots of the calls admitted while the store was down; the calls
        that put their caller over `CALLS_MAX_CONCURRENT_PER_IDENTITY`.

        Every such call takes its slot, forced (it is live), so the cap counts them
        all and refuses the caller's new calls until enough end. Of a caller then
        over the cap, the latest started of these calls are the ones over, as many
        as the caller's live calls exceed it; each gets an audit line
        `call_over_cap_after_outage`. What happens to them is the supervisor's
        (`CALLS_OVER_CAP_AFTER_OUTAGE`).
        """
        owed: dict[str, list[Watched]] = defaultdict(list)
        for call in calls:
            record = call.record
            if not call.owes_slot or record.slot is None:
                continue
            left_ms = record.deadline_ms - self._clock() + SLOT_SLACK_MS
            await self._slots.restore(UsageKeys(record.owner, "").slots, record.slot, left_ms)
            call.owes_slot = False
            owed[record.owner].append(call)
        over_cap: list[Watched] = []
        if self._cap is None:
            return over_cap
        for owner, taken in owed.items():
            live = await self._slots.occupancy(UsageKeys(owner, "").slots)
            excess = min(live - self._cap, len(taken))
            if excess <= 0:
                continue
            taken.sort(key=lambda call: call.record.started_ms)  # stable: creation order
            for call in taken[-excess:]:
                log.warning(
                    "call_over_cap_after_outage",
                    call_id=call.record.call_id,
                    kind=call.record.kind,
                    identity=call.record.caller,
                    live_calls=live,
                    cap=self._cap,
                    action=self._over_cap,
                )
                over_cap.append(call)
        return over_cap

    async def write_changed(self, calls: Sequence[Watched]) -> None:
        """Write the records whose state changed (usage, overrides), in one round trip.

        Only on change: a quiet call costs no write. A record forgotten meanwhile
        (its call just ended) is not brought back.
        """
        changed = [call for call in calls if call.changed]
        if not changed:
            return
        for call in changed:
            call.changed = False
        try:
            await self._records.update([call.record for call in changed])
        except StoreUnavailable:
            for call in changed:
                call.changed = True
            raise

    async def meter(self, calls: Iterable[Watched]) -> Metered:
        """Write the seconds of every call since the last pass, and the tokens and dollars the
        store could not take when they were reported; the calls past a budget now.

        Past a budget: the caller's `QUOTA_CALL_SECONDS_PER_DAY`,
        `QUOTA_TOKENS_PER_DAY` or (their profile's) `QUOTA_USD_PER_DAY`, and every
        call once the deployment's `QUOTA_USD_PER_DAY_TOTAL` is reached. Under a
        dollar budget the pass also reads the callers' and the deployment's dollars
        (an increment of 0): other workers' calls spend them too.

        One pass over thousands of calls: one day, one store round trip, one
        metric update per kind. What a failed write held is kept on its call for
        the next pass, never counted twice: it is taken off the call before the
        write and put back only if the write failed.
        """
        now = self._clock()
        day = day_of(now)
        increments: dict[str, int] = defaultdict(int)
        per_kind: dict[str, int] = defaultdict(int)
        callers: dict[str, list[Watched]] = defaultdict(list)
        taken: list[tuple[Watched, int, int, int]] = []
        unheld: list[tuple[Watched, dict[str, int]]] = []
        quotas: dict[str, int | None] = {}
        watched = list(calls)
        for call in watched:
            record = call.record
            if record.kind == "realtime":
                call.unmetered_ms += now - call.metered_ms
            call.metered_ms = now
            seconds, call.unmetered_ms = divmod(call.unmetered_ms, 1000)
            tokens, call.unwritten_tokens = call.unwritten_tokens, 0
            micro, call.unwritten_micro = call.unwritten_micro, 0
            keys = UsageKeys(record.owner, day)
            callers[keys.seconds].append(call)
            quotas[keys.seconds] = self._quota
            if seconds:
                increments[keys.seconds] += seconds
                per_kind[record.kind] += seconds
            if tokens:
                increments[keys.tokens] += tokens
                callers[keys.tokens].append(call)
                quotas[keys.tokens] = self._token_quota
            limits = self._spend.limits(record)
            if micro or limits.caller_day is not None:
                increments[keys.usd] += micro
                callers[keys.usd].append(call)
                quotas[keys.usd] = limits.caller_day
            if micro:
                _, profile, deployment, own = self._spend.keys(record, day)
                for key in (profile, deployment, own):
                    increments[key] += micro
            if self._spend.ceiling_micro is not None:
                increments[deployment_usd_key(day)] += 0
            spent = {"seconds": seconds, "tokens": tokens, "usd": micro}
            unheld.append((call, shrink(call, spent, increments)))
            taken.append((call, seconds, tokens, micro))
        if not increments:
            return Metered([], [])
        try:
            totals = await self._counters.add(increments, COUNTER_TTL_MS)
        except StoreUnavailable:
            for call, given in unheld:
                restore(call, given)
            for call, seconds, tokens, micro in taken:
                call.unmetered_ms += seconds * 1000
                call.unwritten_tokens += tokens
                call.unwritten_micro += micro
            raise
        for kind, seconds in per_kind.items():
            metrics.USAGE_SECONDS.labels(kind).inc(seconds)
        over_quota = list(
            dict.fromkeys(
                call
                for key, total in totals.items()
                if key in quotas and over(total, quotas[key])
                for call in callers[key]
            )
        )
        ceiling = deployment_usd_key(day)
        limit = self._spend.ceiling_micro
        reached = ceiling in totals and over(totals[ceiling], limit)
        if reached:
            self.ceiling.reached(day, totals[ceiling], limit)
        return Metered(over_quota, watched if reached else [])

    async def orphans(self, watched: Collection[str]) -> list[CallRecord]:
        """Claim the calls whose supervisor is gone (their lease expired); their records."""
        adopted = []
        for member in await self._leases.orphans(ORPHANS_PER_SWEEP):
            if member in watched:
                continue
            if not await self._leases.claim(member, self._worker, self.lease_ms):
                continue
            kind, _, call_id = member.partition(":")
            record = None
            if kind == "realtime":
                record = await self._records.get("realtime", call_id)
            elif kind == "live":
                record = await self._records.get("live", call_id)
            if record is None:
                await self._leases.drop(member)
                continue
            # What the call cost until now, and what of its reserve it gave back, exactly
            # as counted (the record may lag them).
            kinds = list(reserved(record.held))
            own = [call_usd_key(member), *(unheld_key(member, kind) for kind in kinds)]
            record.cost_micro, *given = await self._counters.counts(own)
            record.unheld = dict(zip(kinds, given, strict=True))
            metrics.CALL_TAKEOVERS.inc()
            log.info("call_taken_over", call_id=call_id, kind=kind, worker=self._worker)
            adopted.append(record)
            if record.counted_seconds is not None:
                # Used once: if this worker dies too, its successor must not count from
                # this stale figure, and takes its baseline from the next report instead.
                await self._records.record(replace(record, counted_seconds=None))
        return adopted

    async def hand_over(self, calls: Sequence[Watched]) -> None:
        """At shutdown: meter, write changed state, pass GPT-Live's counted seconds on,
        release every lease.

        Each step runs whatever the one before it met (`StoreUnavailable`
        included), so one failed write never keeps the others' leases held
        until they expire.
        """
        steps: list[Callable[[Sequence[Watched]], Awaitable[object]]] = [
            self.meter,
            self.write_changed,
            self._write_counted,
            self.release,
        ]
        for step in steps:
            try:
                await step(calls)
            except Exception as failed:
                log.error("call_hand_over_incomplete", error=type(failed).__name__)

    async def _write_counted(self, calls: Sequence[Watched]) -> None:
        for call in calls:
            if call.record.kind == "live" and call.live_seconds is not None:
                call.record.counted_seconds = call.live_seconds
                await self._records.record(call.record)

    async def release(self, calls: Sequence[Watched]) -> None:
        """Expire this worker's leases now, so another worker adopts the calls at once."""
        await self._leases.release([call.record.member for call in calls], self._worker)

    async def release_holds(self, call: Watched) -> None:
        """The call is over: what it still holds of its reserve is given back, against the
        day it was taken, in one round trip (kept on the call if the store is down)."""
        increments: dict[str, int] = {}
        taken = shrink(call, dict(call.held), increments)
        if not increments:
            return
        try:
            await self._counters.add(increments, COUNTER_TTL_MS)
        except StoreUnavailable:
            restore(call, taken)
            raise

    async def forget(self, call: Watched) -> None:
        """The call is over: its lease goes for good."""
        await self._leases.drop(call.record.member)
