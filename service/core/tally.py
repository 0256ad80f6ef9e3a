"""Repeated occurrences logged as one line per interval with a count, never one per occurrence.

A hostile or broken upstream can repeat a fault thousands of times a second
(a sideband refused, a frame that is not JSON, a flood of events): one line
each would flood the logs and cost the CPU the other calls need. A `Tally`
counts them and writes one line, with how many and how many bytes, when its
interval (by the injected clock) has passed since the first uncounted one,
or when its owner flushes it (a connection that closes).
"""

from __future__ import annotations

from typing import Any

import structlog

from service.core.clock import Clock

TALLY_INTERVAL_MS = 10_000
"""At most one line per tally this often."""


class Tally:
    """Occurrences of one `event` for one subject (`fields`), logged in aggregate."""

    def __init__(
        self,
        logger: structlog.typing.FilteringBoundLogger,
        event: str,
        clock: Clock,
        *,
        first_at_once: bool = False,
        **fields: Any,
    ) -> None:
        self._log = logger
        self._event = event
        self._clock = clock
        self._fields = fields
        self._count = 0
        self._bytes = 0
        self._since_ms: int | None = None
        # The first occurrence logged at once (when one alone is worth a line), the
        # rest at most once an interval.
        self._last_ms: int | None = None if first_at_once else -1
        self.total = 0

    def add(self, size: int = 0, **latest: Any) -> None:
        """One more occurrence (of `size` bytes); the line is written if it is due."""
        now = self._clock()
        self._count += 1
        self._bytes += size
        self.total += 1
        if self._since_ms is None:
            self._since_ms = now
        if self._last_ms is None or now - self._since_ms >= TALLY_INTERVAL_MS:
            self.flush(**latest)

    def flush(self, **latest: Any) -> None:
        """Write what was counted since the last line, if anything."""
        if not self._count:
            return
        sizes = {"bytes": self._bytes} if self._bytes else {}
        self._log.warning(
            self._event, count=self._count, total=self.total, **sizes, **self._fields, **latest
        )
        self._count = self._bytes = 0
        self._since_ms = None
        self._last_ms = self._clock()
