"""When the call loop attaches again: its backoff, its bound on failures, and their log.

A sideband accepted and closed at once was once retried every 0 to 0.5 s
forever (a successful connect reset the backoff), 966 handshakes in 5 s for
50 calls. The rules now, for each call (`Attempts`):

- *Backoff.* Full jitter, doubling from 0.25 s to `BACKOFF_MAX_S` with each
  failed attachment in a row. An attachment fails when the connect fails,
  or when the connection ends *unstable*: before it delivered an event, or
  within `STABLE_S` (by the injected clock). Only a stable connection starts
  the backoff over, so a socket accepted and closed at once (or one that
  sends a frame over the size limit) is retried ever more slowly.
- *Bound.* After `CALLS_SIDEBAND_MAX_FAILURES` failed attachments over the
  call's life it is `exhausted`: the loop hangs the call up
  (`unsupervisable`), since the policy can no longer be kept on it.
- *Log.* Failures are one `sideband_failing` line per call per
  `TALLY_INTERVAL_MS` with their count (the first at once), and the
  `rtp_sideband_failures_total` counter.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import structlog

from service.config import Settings
from service.core import metrics
from service.core.clock import Clock
from service.core.tally import Tally

log = structlog.get_logger("service.calls")
BACKOFF_MAX_S = 10.0
STABLE_S = 5
"""A connection that delivered an event and stayed up this long worked: the backoff restarts."""


def backoff(attempt: int) -> float:
    """Full jitter, 0.25 s doubling to `BACKOFF_MAX_S`."""
    return random.uniform(0, min(BACKOFF_MAX_S, 0.25 * 2**attempt))  # noqa: S311 - jitter


def fault_site(fault: BaseException) -> str:
    """Where `fault` was raised, as `module:line` (the innermost frame of its traceback)."""
    trace = fault.__traceback__
    if trace is None:
        return "unknown"
    while trace.tb_next is not None:
        trace = trace.tb_next
    return f"{trace.tb_frame.f_globals.get('__name__', '?')}:{trace.tb_lineno}"


@dataclass(slots=True)
class Attachment:
    """One sideband connection's life: when it opened, how many events it delivered."""

    opened_ms: int
    events: int = 0


class Attempts:
    """One call's attachments: the backoff's exponent, the failures in its life, their log."""

    def __init__(self, settings: Settings, clock: Clock, call_id: str) -> None:
        self._max_failures = settings.calls_sideband_max_failures
        self._clock = clock
        self._attempt = 0  # failed attachments in a row: the backoff's exponent
        self._attached = False
        self._failing = Tally(log, "sideband_failing", clock, first_at_once=True, call_id=call_id)

    @property
    def exhausted(self) -> bool:
        """Whether the call has had its `CALLS_SIDEBAND_MAX_FAILURES` failed attachments."""
        return self._failing.total >= self._max_failures

    def opened(self) -> Attachment:
        """A connection is up (after the first, counted as a reconnect)."""
        if self._attached:
            metrics.SIDEBAND_RECONNECTS.inc()
        self._attached = True
        return Attachment(self._clock())

    async def closed(self, attachment: Attachment, detail: str) -> None:
        """The connection ended (`detail`: why): a stable one restarts the backoff, an
        unstable one is a failure; then the backoff's wait."""
        stable = attachment.events > 0 and (self._clock() - attachment.opened_ms >= STABLE_S * 1000)
        if not stable:
            await self.failed(detail)
            return
        self._failing.flush()
        self._attempt = 0
        await asyncio.sleep(backoff(self._attempt))

    async def failed(self, detail: str) -> None:
        """A failed attachment: counted, logged in aggregate, then the backoff's wait (none
        once exhausted: the call is hung up at once)."""
        metrics.SIDEBAND_FAILURES.inc()
        self._failing.add(last=detail)
        self._attempt += 1
        if not self.exhausted:
            await asyncio.sleep(backoff(self._attempt))

    def flush(self) -> None:
        """Log the failures not yet logged (the call's loop ends)."""
        self._failing.flush()
