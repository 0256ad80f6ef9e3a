"""Usage per caller and UTC day, as the shared store keeps it.

Supervised calls report what they use: Realtime tokens (`response.done`'s
usage) and call seconds (Realtime: wall-clock time attached; GPT-Live: the
`seconds` of `session.usage.updated` and `session.closed`). They are summed
per caller (a hash of the identity) and UTC day, in counters that expire two
days later. Only numbers: nothing of a call's content is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.clock import DAY_MS

COUNTER_TTL_MS = 2 * DAY_MS


@dataclass(frozen=True, slots=True)
class UsageKeys:
    """The counters of one caller on one day, and their live-call slots."""

    owner: str
    day: str

    @property
    def tokens(self) -> str:
        return f"rtp:u:{self.day}:{self.owner}:tokens"

    @property
    def seconds(self) -> str:
        return f"rtp:u:{self.day}:{self.owner}:seconds"

    @property
    def slots(self) -> str:
        return f"rtp:calls:live:{self.owner}"


def over(total: int, quota: int | None) -> bool:
    """Whether a daily total has reached its quota (None: no quota)."""
    return quota is not None and total >= quota
