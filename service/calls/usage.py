"""Usage per caller and UTC day, as the shared store keeps it.

Supervised calls report what they use: Realtime tokens (`response.done`'s
usage) and call seconds (Realtime: wall-clock time attached; GPT-Live: the
`seconds` of `session.usage.updated` and `session.closed`). They are summed
per caller (a hash of the identity) and UTC day, in counters that expire two
days later. Only numbers: nothing of a call's content is kept.

**Never an upstream number blindly.** A reported figure past what a call can
plausibly use (one response's tokens past `MAX_RESPONSE_TOKENS`, GPT-Live
seconds past the call's wall-clock age, `plausible_live_seconds`) is counted
at that bound and logged (`call_usage_clamped`): one absurd event (a
`total_tokens` of 2^63-1) must not lock its caller out for the day.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.clock import DAY_MS

COUNTER_TTL_MS = 2 * DAY_MS
MAX_RESPONSE_TOKENS = 128_000 + 4_096
"""The most tokens one Realtime response can use: the largest context a Realtime model has
had (128k tokens, gpt-4o-realtime; gpt-realtime has 32k) read in full, plus the longest
output a response may have (`max_output_tokens` is at most 4096)."""
LIVE_START_CHARGE_S = 15.0
"""GPT-Live bills 15 seconds at creation, before any wall-clock second has passed."""
LIVE_SECONDS_SLACK_S = 30.0
"""GPT-Live's clock starts before the supervisor's (`started_ms` is taken once the creation
answered): slack for that latency and for clock steps between hosts."""


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
    def usd(self) -> str:
        """The caller's dollars that day, in micro-dollars."""
        return f"rtp:u:{self.day}:{self.owner}:usd"

    @property
    def slots(self) -> str:
        return f"rtp:calls:live:{self.owner}"


def profile_usd_key(day: str, profile: str) -> str:
    """A profile's dollars that day (every caller of it), in micro-dollars."""
    return f"rtp:p:{day}:{profile}:usd"


def call_usd_key(member: str) -> str:
    """One call's dollars counted so far, in micro-dollars: written with the caller's, so the
    worker that adopts the call knows exactly what was counted (never twice, none lost)."""
    return f"rtp:c:{member}:usd"


def over(total: int, quota: int | None) -> bool:
    """Whether a daily total has reached its quota (None: no quota)."""
    return quota is not None and total >= quota


def plausible_live_seconds(started_ms: int, now_ms: int) -> float:
    """The most cumulative GPT-Live seconds a call started at `started_ms` can report now."""
    return max(0, now_ms - started_ms) / 1000 + LIVE_START_CHARGE_S + LIVE_SECONDS_SLACK_S
