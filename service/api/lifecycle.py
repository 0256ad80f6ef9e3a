"""Graceful shutdown: turn unready the moment SIGTERM arrives, then drain.

uvicorn owns the signal handlers (it stops accepting connections, waits up to
`SHUTDOWN_GRACE_SECONDS` for in-flight requests, then runs the lifespan
shutdown that closes the upstream pool and Redis). It only tells the app at
the end of that, so `/readyz` would stay green while the pod drains. This
wraps uvicorn's handler: the first SIGTERM or SIGINT marks the process as
draining, then hands the signal on unchanged.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger("service.lifecycle")


class Lifecycle:
    """Whether this process is draining; readiness reads it."""

    def __init__(self) -> None:
        self.draining = False
        self._previous: dict[int, Any] = {}

    def watch_signals(self) -> None:
        """Chain onto the current SIGTERM/SIGINT handlers (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._chain(self._previous[sig]))

    def restore(self) -> None:
        """Put the previous handlers back (at the end of the lifespan)."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _chain(self, previous: Any) -> Any:
        def handler(sig: int, frame: FrameType | None) -> None:
            if not self.draining:
                self.draining = True
                log.info("shutdown_started", signal=signal.Signals(sig).name)
            if callable(previous):
                previous(sig, frame)

        return handler
