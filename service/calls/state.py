"""What the service does for a call, as its owner may see it while the call lasts.

`GET /v1/realtime/calls/{call_id}` and `GET /v1/live/sessions/{session_id}`
show a call's record (`service.calls.records`): when it started and must end
(`CALLS_MAX_SECONDS`), which fields the policy fixed, each override the
supervisor met (its scope: the session, a response, an item or a tool call)
and how long its revert took, and the usage so far. Names
and numbers only: never a fixed value (it can be the server's instructions),
never anything of a transcript.

The supervising worker keeps the record's overrides with `noted` and
`settled` (pure, on the record in its memory) and writes the record when
they change; any worker answers from the shared store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Literal

from pydantic import BaseModel

from service.calls.records import OVERRIDES_KEPT, CallRecord, Outcome, Override, Scope
from service.calls.spend import usd
from service.contract.calls import CallKind


def noted(
    record: CallRecord,
    paths: Iterable[str],
    now_ms: int,
    outcome: Outcome,
    scope: Scope = "session",
) -> None:
    """Note the overridden `paths` and what the supervisor does about them.

    A field whose last override is still being reverted keeps that entry (its
    time to revert runs from when it was first seen), so a client that keeps
    changing it is one entry, not one per event; `hung_up` ends it. Only the
    session's fields are reverted: a response, item or tool call is one entry each.
    """
    reverting = record.overrides if scope == "session" else []
    pending = {entry.field: entry for entry in reverting if entry.outcome == "reverting"}
    for path in paths:
        entry = pending.get(path)
        if entry is None:
            record.overrides.append(Override(path, now_ms, outcome, scope=scope))
        elif outcome == "hung_up":
            entry.outcome = outcome
    del record.overrides[:-OVERRIDES_KEPT]


def settled(record: CallRecord, overridden: Collection[str], now_ms: int) -> bool:
    """A `session.updated` holds the policy again for the fields not in `overridden`: their
    reverts are done, timed from the override. Whether any entry changed."""
    changed = False
    for entry in record.overrides:
        if entry.outcome == "reverting" and entry.field not in overridden:
            entry.outcome = "reverted"
            entry.revert_ms = now_ms - entry.at_ms
            changed = True
    return changed


class CallOverride(BaseModel):
    """Something the call was seen to do against the policy, and what the supervisor did."""

    scope: Scope
    """`session`: a `session.updated` broke a rule; `response`: a response's voice,
    modalities or token cap; `item`: a system or developer message the service did not
    create (server-set instructions); `tool`: a call of a tool the policy does not offer."""
    field: str
    """The field's GA path (`audio.output.voice`; `role` of an item, `name` or
    `server_label` of a tool call); never its value."""
    at_ms: int
    """When the supervisor saw the change (Unix milliseconds)."""
    outcome: Outcome
    """`reverting`: the policy's value was sent back; `reverted`: OpenAI confirmed it;
    `cancelled`: the response was cancelled; `deleted`: the item was deleted; `hung_up`:
    the call was ended for it (`CALLS_ON_OVERRIDE=hangup`, a changed model, or a session
    that would not hold)."""
    revert_ms: int | None
    """From the change seen to the `session.updated` showing the policy's value again."""


class CallUsage(BaseModel):
    """What the call has used so far, as the service meters it."""

    tokens: int
    """Realtime: the total tokens of the call's responses. GPT-Live: 0 (it bills seconds)."""
    seconds: int
    """Realtime: the seconds since the call started. GPT-Live: its reported usage seconds."""
    usd: str
    """What it has cost, in dollars with six decimals, at the service's price table
    (`PRICES_FILE`); `"0.000000"` for a model without a price."""


class CallState(BaseModel):
    """`GET /v1/realtime/calls/{call_id}`, `GET /v1/live/sessions/{session_id}`: a call, now."""

    id: str
    kind: CallKind
    state: Literal["active", "ending"]
    """`ending`: past its deadline, the supervisor is hanging it up."""
    started_at_ms: int
    """When the service created the call (Unix milliseconds)."""
    deadline_at_ms: int
    """When the service hangs it up: `started_at_ms` plus `CALLS_MAX_SECONDS`."""
    left_ms: int
    """Until the deadline, on the service's clock (0 once it passed)."""
    fixed: list[str]
    """The fields the policy keeps for the whole call, by GA path; never their values."""
    overrides: list[CallOverride]
    """The latest overrides (at most 20), oldest first."""
    usage: CallUsage


def state_of(record: CallRecord, now_ms: int) -> CallState:
    """The owner's view of `record` at `now_ms`."""
    left_ms = max(0, record.deadline_ms - now_ms)
    if record.kind == "realtime":
        seconds = (min(now_ms, record.deadline_ms) - record.started_ms) // 1000
    else:
        seconds = int(record.usage_seconds)
    return CallState(
        id=record.call_id,
        kind=record.kind,
        state="active" if left_ms > 0 else "ending",
        started_at_ms=record.started_ms,
        deadline_at_ms=record.deadline_ms,
        left_ms=left_ms,
        fixed=list(record.fixed),
        overrides=[
            CallOverride(
                scope=entry.scope,
                field=entry.field,
                at_ms=entry.at_ms,
                outcome=entry.outcome,
                revert_ms=entry.revert_ms,
            )
            for entry in record.overrides
        ],
        usage=CallUsage(tokens=record.tokens, seconds=max(0, seconds), usd=usd(record.cost_micro)),
    )
