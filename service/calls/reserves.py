"""Admission reserves: what each admitted call holds against its daily budgets until it is spent.

Admission only reading the counters let calls admitted at once all pass on
the same total: at 990 of 1,000 tokens, 50 simultaneous calls were admitted
and spent 25,990 tokens before any was hung up. So each admitted call
reserves an amount of every budget it is checked against (its caller's day
tokens, seconds and dollars, the deployment's day dollars), in a companion
counter (`service.store.held_key`), and admission checks spent plus held, in
one atomic store operation (`Counters.hold`): the calls admitted at once see
each other's reserves.

A call's hold shrinks as it spends, in the same write as the spend (a hold
counter and the call's own given-back counter, `unheld_key`), so spent plus
held counts the call once; what is left is released when the call ends.
Holds are released against the day they were taken (the held keys are in the
record), and the given-back counter tells a worker that adopts the call after
a crash exactly what it still holds (`Keeper.orphans`).

The bound (README, docs/configuration.md): a daily budget is overshot by at
most the reserves of the calls admitted at once, plus, per live call, what
one response spends beyond its reserve before the call is hung up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from service.calls.watched import Watched

HeldKind = Literal["tokens", "seconds", "usd"]
HELD_KINDS: tuple[HeldKind, ...] = ("tokens", "seconds", "usd")


def kind_of(held: str) -> str:
    """The budget kind a hold counter is for (its budget counter's last part)."""
    return held.rsplit(":", 2)[-2]


def unheld_key(member: str, kind: str) -> str:
    """What of one call's reserve of `kind` was given back so far (spent, or released)."""
    return f"rtp:c:{member}:unheld:{kind}"


def reserved(held: Mapping[str, int]) -> dict[str, int]:
    """Per kind, what a call reserved at admission (its record's `held`: the same amount on
    each of a kind's counters)."""
    out: dict[str, int] = {}
    for key, amount in held.items():
        out[kind_of(key)] = max(out.get(kind_of(key), 0), amount)
    return out


def still_held(held: Mapping[str, int], unheld: Mapping[str, int]) -> dict[str, int]:
    """Per kind, what a call still holds: its reserve less what was given back."""
    return {kind: max(0, amount - unheld.get(kind, 0)) for kind, amount in reserved(held).items()}


def shrink(call: Watched, spent: Mapping[str, int], increments: dict[str, int]) -> dict[str, int]:
    """Give back as much of the call's hold as `spent` uses up, per kind, into `increments`
    (the same write as the spend); what was taken off the call, for `restore` if the write
    fails."""
    taken: dict[str, int] = {}
    for kind, amount in spent.items():
        left = call.held.get(kind, 0)
        used = min(amount, left)
        if used <= 0:
            continue
        call.held[kind] = left - used
        taken[kind] = used
        for key in call.record.held:
            if kind_of(key) == kind:
                increments[key] = increments.get(key, 0) - used
        own = unheld_key(call.record.member, kind)
        increments[own] = increments.get(own, 0) + used
        call.record.unheld[kind] = call.record.unheld.get(kind, 0) + used
        call.changed = True
    return taken


def restore(call: Watched, taken: Mapping[str, int]) -> None:
    """Put back on the call what `shrink` took off it: its write failed."""
    for kind, used in taken.items():
        call.held[kind] = call.held.get(kind, 0) + used
        call.record.unheld[kind] = call.record.unheld.get(kind, 0) - used
