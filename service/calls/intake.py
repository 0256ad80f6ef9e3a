"""Intake: how a call enters supervision, created for a browser or accepted for a phone.

A flow hands the supervisor a new call once (`open_call`: a browser's offer),
or a phone call OpenAI announced (`accept_call`: it also takes the dialled
number's line, `PHONE_MAX_CONCURRENT_PER_NUMBER`, and accepts rather than
creates). Either way the call is admitted (`service.calls.admission`:
budgets with their reserves held, a live-call slot), created or accepted
upstream with the server's key, recorded (who created it, what the policy
fixed), given its lease and handed to the supervisor to follow, one task
per call id: an upstream answer with an id already recorded or watched is
refused (`CallIdReused`). What was taken for a call that never came to be
is given back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn

import structlog

from service.calls.admission import Admission, Admitted
from service.calls.fixed import fixed_fields
from service.calls.keeper import SLOT_SLACK_MS, Keeper
from service.calls.overrides import DEFAULT_PROFILE
from service.calls.records import CallRecord, CallRecords, owner_of
from service.calls.report import CallerCalls
from service.calls.spend import Spend
from service.calls.turns import new_tag
from service.config import Settings
from service.contract.calls import CallKind
from service.contract.effective import SessionJSON
from service.core.clock import Clock
from service.core.errors import CallIdReused, RateLimited
from service.policy import Decision, Policy
from service.store import Slots, StoreUnavailable
from service.upstream import Upstream
from service.upstream.calls import CreatedCall, accept_call, create_call

log = structlog.get_logger("service.calls")
UNRECORDED = frozenset({"instructions", "input"})
"""Left out of a record's `created` session: text (the caller's instructions, GPT-Live's
initial items) the store must not hold; server-set instructions are kept in `fixed`."""
LINE_KEY = "rtp:line:{}"
"""A dialled number's live calls (`PHONE_MAX_CONCURRENT_PER_NUMBER`), by the number's hash."""


@dataclass(frozen=True, slots=True)
class NewCall:
    """A call to create: who asks, what the policy decided, and the browser's offer."""

    kind: CallKind
    identity: str
    caller: str
    """The caller as audit lines name it (hashed with AUTH_HASH_IDENTITIES)."""
    policy: Policy
    session: SessionJSON
    """The effective session, exactly as it goes upstream."""
    decisions: Iterable[Decision]
    offer: str
    request_id: str


class Intake:
    """Admits, creates or accepts, and records calls; `watch` hands each to its follower."""

    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        slots: Slots,
        parts: tuple[Admission, CallRecords, Keeper, Spend, CallerCalls],
        clock: Clock,
        watching: Callable[[str], bool],
        watch: Callable[[CallRecord, bool], None],
    ) -> None:
        self._settings = settings
        self._upstream = upstream
        self._store = slots
        self._admission, self._records, self._keeper, self._spend, self._calls_of = parts
        self._clock = clock
        self._watching = watching
        self._watch = watch

    async def open_call(self, new: NewCall) -> CreatedCall:
        """Admit, create upstream, record and supervise a call; 429 or the upstream's error."""
        owner = owner_of(new.identity)
        profile = self._profile_of(new.policy)
        admitted = await self._admit(owner, new, profile)
        try:
            created = await create_call(
                self._upstream, new.kind, new.offer, new.session, new.request_id
            )
        except BaseException:
            await self._admission.give_back_quietly(owner, admitted.slot, admitted.held)
            raise
        await self._supervise(new, created.call_id, profile, admitted)
        return created

    async def _admit(self, owner: str, new: NewCall, profile: str) -> Admitted:
        """The call's budgets and slot (`Admission.admit`), with its reserve held."""
        reserve = self._spend.reserve_micro(new.kind, new.session.get("model"))
        limits = self._spend.limits_for(profile)
        return await self._admission.admit(owner, new.kind, limits, reserve)

    async def accept_call(self, new: NewCall, call_id: str, line: str | None) -> float:
        """A phone call OpenAI announced: admitted as `open_call` admits, its number's line
        taken (`PHONE_MAX_CONCURRENT_PER_NUMBER`: 429 `line_busy` when full), accepted
        upstream instead of created, then recorded and supervised the same way; the ms
        OpenAI took to accept. `line` names the dialled number (a hash of it)."""
        owner = owner_of(new.identity)
        profile = self._profile_of(new.policy)
        admitted = await self._admit(owner, new, profile)
        member = f"{new.kind}:{call_id}"
        try:
            await self._take_line(line, member)
            elapsed_ms = await accept_call(
                self._upstream, new.kind, call_id, new.session, new.request_id
            )
        except BaseException:
            await self._admission.give_back_quietly(owner, admitted.slot, admitted.held)
            with contextlib.suppress(StoreUnavailable):
                await self.give_line_back(line, member)
            raise
        await self._supervise(new, call_id, profile, admitted, line=line)
        return elapsed_ms

    async def _take_line(self, line: str | None, member: str) -> None:
        """One of the number's `PHONE_MAX_CONCURRENT_PER_NUMBER` lines, or 429 `line_busy`."""
        limit = self._settings.phone_max_concurrent_per_number
        if line is None or limit is None:
            return
        ttl_ms = (self._settings.calls_max_seconds + 60) * 1000
        if not await self._store.reserve(LINE_KEY.format(line), member, limit, ttl_ms):
            raise RateLimited(f"This number already has {limit} live calls.", code="line_busy")

    async def give_line_back(self, line: str | None, member: str) -> None:
        """The call has ended, or never was: its number's line is free again."""
        if line is not None and self._settings.phone_max_concurrent_per_number is not None:
            await self._store.unreserve(LINE_KEY.format(line), member)

    async def _supervise(
        self,
        new: NewCall,
        call_id: str,
        profile: str,
        admitted: Admitted,
        *,
        line: str | None = None,
    ) -> None:
        """The call exists upstream: record it, take its lease and follow it."""
        started = self._clock()
        record = CallRecord(
            kind=new.kind,
            call_id=call_id,
            owner=owner_of(new.identity),
            caller=new.caller,
            started_ms=started,
            deadline_ms=started + self._settings.calls_max_seconds * 1000,
            fixed=fixed_fields(new.kind, new.policy, new.session, new.decisions),
            slot=admitted.slot,
            profile=profile,
            created={k: v for k, v in new.session.items() if k not in UNRECORDED},
            tag=new_tag() if self._server_responses(new.kind) else None,
            held=dict(admitted.held),
            line=line,
        )
        if self._watching(record.member):
            await self._refuse_reused(record)
        try:
            if not await self._records.create(record):
                await self._refuse_reused(record)
            await self._keeper.hold(record)
            await self._calls_of.add(record, record.deadline_ms - started + SLOT_SLACK_MS)
        except StoreUnavailable:
            # The call exists and the browser needs its answer: losing it would leave a
            # billed call nobody can use. Supervision goes on in this worker, whose
            # keeper writes the record and lease once the store answers (until then
            # the service's hang-up answers 404; the browser can still close its peer).
            log.error("call_record_failed", call_id=call_id, kind=new.kind)
        self._watch(record, admitted.owed)

    async def _refuse_reused(self, record: CallRecord) -> NoReturn:
        """OpenAI answered the creation with the id of a call already recorded: 502.

        The recorded call is left untouched: its record, its supervisor, its owner's
        hang-up. The new one is not hung up, because a hang-up names the call by that
        id, which addresses the recorded call and would end it for its owner. The new
        browser never gets its SDP answer, so its peer never connects and the new
        call carries nothing. The slot the new one took is given back.
        """
        await self._admission.give_back_quietly(record.owner, record.slot, record.held)
        with contextlib.suppress(StoreUnavailable):
            await self.give_line_back(record.line, record.member)
        log.error("call_id_reused", call_id=record.call_id, kind=record.kind)
        raise CallIdReused(
            "OpenAI answered with the id of a call that already exists; retry.",
        )

    def _server_responses(self, kind: CallKind) -> bool:
        """Whether the supervisor starts this call's responses (`CALLS_RESPONSES=server`:
        Realtime calls; GPT-Live's responses are its own)."""
        return kind == "realtime" and self._settings.calls_responses == "server"

    def _profile_of(self, policy: Policy) -> str:
        """The name of the profile `policy` is (the flow picked it for the caller)."""
        for name, candidate in self._settings.profiles.all():
            if candidate is policy:
                return name
        return DEFAULT_PROFILE
