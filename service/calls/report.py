"""Spending as people read it: a UTC day's by caller and profile, for operators
(`GET /admin/usage`), and a caller's live calls, for the caller (`GET /v1/usage`).

The store's counters are per caller and day (tokens, seconds, dollars), per
profile and day, and for the deployment; which callers a day had is kept in
an index of its own, noted when a caller's call is created and, for a call
that runs past midnight, at the first keeper pass of the new day. Like the
counters, the index lasts two days: today and yesterday can be reported.

A caller's live calls are kept in a set per caller (members expire with the
call's deadline, and go when it ends); each call's dollars are read from its
own counter, exact whichever worker supervises it.

Callers are named as audit lines name them (the identity, or its hash with
`AUTH_HASH_IDENTITIES`); the index holds that name, the owner hash the
counters are keyed by and the profile, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.calls.records import CallRecord
from service.calls.spend import usd
from service.calls.usage import COUNTER_TTL_MS, UsageKeys, call_usd_key, profile_usd_key
from service.limits import deployment_usd_key
from service.store import Counters, Slots

SEPARATOR = "\t"


def calls_key(owner: str) -> str:
    """The caller's live calls (`kind:call_id`)."""
    return f"rtp:calls:of:{owner}"


def index_key(day: str) -> str:
    """The callers with calls on `day`."""
    return f"rtp:idx:{day}:callers"


@dataclass(frozen=True, slots=True)
class CallerDay:
    """One caller's day."""

    identity: str
    profile: str
    micro: int
    tokens: int
    call_seconds: int

    def shown(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "profile": self.profile,
            "usd": usd(self.micro),
            "tokens": self.tokens,
            "call_seconds": self.call_seconds,
        }


class DayReport:
    """The day index, and the report read from it; one per supervisor."""

    def __init__(self, counters: Counters, slots: Slots) -> None:
        self._counters = counters
        self._slots = slots

    async def note(self, record: CallRecord, day: str) -> None:
        """Note the call's caller among `day`'s (`StoreUnavailable` if the store is down)."""
        member = SEPARATOR.join((record.owner, record.profile, record.caller))
        await self._slots.restore(index_key(day), member, COUNTER_TTL_MS)

    async def report(self, day: str, limit: int) -> dict[str, Any]:
        """`day`'s totals: the deployment's, each profile's and the `limit` costliest callers'."""
        entries = []
        for member in await self._slots.members(index_key(day)):
            owner, profile, caller = member.split(SEPARATOR, 2)
            entries.append((UsageKeys(owner, day), profile, caller))
        profiles = sorted({profile for _, profile, _ in entries})
        keys = [deployment_usd_key(day), *(profile_usd_key(day, p) for p in profiles)]
        for usage, _, _ in entries:
            keys += [usage.usd, usage.tokens, usage.seconds]
        values = dict(zip(keys, await self._counters.counts(keys), strict=True))
        callers = [
            CallerDay(
                caller,
                profile,
                values[usage.usd],
                values[usage.tokens],
                values[usage.seconds],
            )
            for usage, profile, caller in entries
        ]
        callers.sort(key=lambda entry: (-entry.micro, -entry.tokens, entry.identity))
        by_profile = sorted(
            ((profile, values[profile_usd_key(day, profile)]) for profile in profiles),
            key=lambda entry: (-entry[1], entry[0]),
        )
        return {
            "date": day,
            "usd": usd(values[deployment_usd_key(day)]),
            "profiles": [{"profile": name, "usd": usd(micro)} for name, micro in by_profile],
            "callers": [entry.shown() for entry in callers[:limit]],
            "callers_total": len(callers),
        }


class CallerCalls:
    """Each caller's live calls and what they cost so far."""

    def __init__(self, counters: Counters, slots: Slots) -> None:
        self._counters = counters
        self._slots = slots

    async def add(self, record: CallRecord, ttl_ms: int) -> None:
        """The call is live (until its deadline, at most)."""
        await self._slots.restore(calls_key(record.owner), record.member, ttl_ms)

    async def remove(self, record: CallRecord) -> None:
        """The call has ended."""
        await self._slots.unreserve(calls_key(record.owner), record.member)

    async def costs(self, owner: str) -> list[dict[str, Any]]:
        """The caller's live calls, each with its dollars so far (two round trips)."""
        members = sorted(await self._slots.members(calls_key(owner)))
        counted = await self._counters.counts([call_usd_key(m) for m in members])
        calls = []
        for member, micro in zip(members, counted, strict=True):
            kind, _, call_id = member.partition(":")
            calls.append({"id": call_id, "kind": kind, "usd": usd(micro)})
        return calls
