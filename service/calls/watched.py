"""A call this worker supervises now: its record and what only this worker knows of it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from service.calls.records import CallRecord
from service.calls.turns import Marks
from service.calls.usage import UsageKeys


@dataclass(slots=True, eq=False)
class Watched:
    """A call this worker supervises now, its usage not yet written to the store, and the
    overrides it acted on."""

    record: CallRecord
    metered_ms: int
    """When the keeper last metered the call's seconds (on the supervisor's clock)."""
    task: asyncio.Task[None] | None = None
    unmetered_ms: int = 0
    """Call seconds not yet written to the caller's day (the keeper's next pass writes them)."""
    unwritten_tokens: int = 0
    """Realtime tokens a `response.done` reported while the store was down: kept here until
    the keeper's next pass writes them, with the seconds, and applies the token quota."""
    cost_pico: int = 0
    """The call's cost so far, exactly (pico-dollars): what this worker priced, on top of
    what was counted before it adopted the call."""
    counted_micro: int = 0
    """Of `cost_pico`, the whole micro-dollars taken for the store (written, or waiting in
    `unwritten_micro`)."""
    unwritten_micro: int = 0
    """Micro-dollars the store could not take when they were priced: the keeper's next pass
    writes them."""
    transcription_model: object = None
    """The session's input transcription model, as last seen (its usage is priced at it)."""
    live_seconds: float | None = 0.0
    """GPT-Live's cumulative `usage.seconds` counted so far. After a hand-over it is what
    the previous worker counted; after a crash None, until the first report sets the
    baseline (what the previous worker counted is unknown: never count it twice)."""
    held: dict[str, int] = field(default_factory=dict)
    """Per kind (tokens, seconds, usd), what the call still holds of its admission reserve
    (`service.calls.reserves`)."""
    reverts: list[int] = field(default_factory=list)
    """When the recent reverts, cancels and deletes were sent (ms), to stop a revert loop."""
    acted: set[str] = field(default_factory=set)
    """The responses cancelled and items deleted (ids): each is acted on once."""
    own_items: set[str] = field(default_factory=set)
    """Ids of the items the service itself created, which are never deleted as foreign (none
    yet: the service sends no items of its own)."""
    marks: Marks = field(default_factory=Marks)
    """`CALLS_RESPONSES=server`: the marks this call's responses used (each is good once)."""
    owes_slot: bool = False
    """Admitted while the store was down (`RATE_LIMIT_ON_STORE_ERROR=open`): its live-call
    slot is named in the record but not taken; the keeper's next pass takes it."""
    indexed_day: str | None = None
    """The UTC day whose index of callers names this call's caller (`service.calls.report`)."""
    keys_day: str | None = None
    """The UTC day `usage_keys` and `dollar_keys` are of (None: not named yet)."""
    usage_keys: UsageKeys = field(default_factory=lambda: UsageKeys("", ""))
    """The caller's counters that day (`service.calls.metering`)."""
    dollar_keys: tuple[str, ...] = ()
    """The counters the call's dollars go to that day (`Spend.keys`)."""
    changed: bool = False
    """The record holds state (usage, overrides) the store may not have yet: the keeper's
    next pass writes it."""
