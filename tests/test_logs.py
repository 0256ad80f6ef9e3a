"""Logging set-up: one buffer, one flusher thread and one exit hook per process.

`python -m service` configures logging, then uvicorn's worker import
(`service.server.asgi`) configures it again in the same process when
`WORKERS=1`. Each run must point the one buffer at its stream, not start
another thread.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import io, threading
from service.core import logs
for _ in range(3):
    logs.configure("json", "INFO", stream=io.StringIO())
first = io.StringIO()
logs.configure("json", "INFO", stream=first)
import structlog
structlog.get_logger("t").info("hello")
logs.flush()
print(sum(t.name == "log-flusher" for t in threading.enumerate()))
print('"event":"hello"' in first.getvalue())
"""


class TestConfigure:
    """`service.core.logs.configure`, run more than once."""

    def test_one_flusher_thread_however_often_it_runs(self) -> None:
        """Four runs leave one flusher thread, writing to the last run's stream."""
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
        )
        threads, wrote = done.stdout.split()
        assert threads == "1"
        assert wrote == "True"


FAULT = """
import io, sys
from service.core import logs
stream = io.StringIO()
logs.configure("json", "INFO", stream=stream)
import structlog
def dive(depth):
    return dive(depth + 1)
try:
    if sys.argv[1] == "library":
        from service.calls.fixed import restoring
        value = []
        for _ in range(990):
            value = [value]
        restoring("realtime", {"tools": value}, ["tools"])  # copy.deepcopy recurses
    dive(0)
except RecursionError:
    if sys.argv[1] == "stdlib":
        import logging
        logging.getLogger("uvicorn.error").exception("failed")
    else:
        structlog.get_logger("t").exception("failed", call_id="c1")
logs.flush()
sys.stdout.write(stream.getvalue())
"""


class TestFaults:
    """A logged fault is its type and where it was raised, never a thousand-frame stack."""

    @pytest.mark.parametrize("source", ["structlog", "stdlib"])
    def test_recursion_error_is_one_bounded_line(self, source: str) -> None:
        """`log.exception` after a RecursionError: one short line naming the type and line."""
        done = subprocess.run(
            [sys.executable, "-c", FAULT, source], capture_output=True, text=True, check=True
        )
        [line] = done.stdout.splitlines()
        assert len(line) < 1_000
        exception = json.loads(line)["exception"]
        assert exception.startswith("RecursionError at <string>:8 in dive")

    def test_the_projects_own_frame_is_named(self) -> None:
        """Raised deep in the standard library, the line also names the service's own frame."""
        done = subprocess.run(
            [sys.executable, "-c", FAULT, "library"], capture_output=True, text=True, check=True
        )
        exception = json.loads(done.stdout)["exception"]
        assert exception.startswith("RecursionError at copy.py:")
        assert ", from service/calls/fixed.py:" in exception
        assert "in restoring (last 5 of" in exception
