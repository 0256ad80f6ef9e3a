"""Last in the suite: no secret ever reached a log line, in-process or in a subprocess.

Marked `after_suite`, which `conftest.py`'s collection hook moves to the end,
it reads all the log output the suite produced, unscrubbed: the in-process
JSON log configured by `conftest.py` and the output of every service started
as a process (`LOG_SCRUB=false`). The mask in `service.core.logs` is a second line
of defence; this shows the first holds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator import TRANSCRIPT
from tests.conftest import API_KEY, MCP_HEADER, MCP_TOKEN, SERVER_INSTRUCTIONS

SECRET_SHAPES = {
    "server API key": re.compile(re.escape(API_KEY) + r"|\bsk-[A-Za-z0-9_\-]{10,}"),
    "client secret": re.compile(r"\bek_[A-Za-z0-9_\-]{6,}"),
    "caller key": re.compile(r"rtp_[A-Za-z0-9_\-]{40,}"),
    "caller JWT": re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]+"),
    "server instructions": re.compile(re.escape(SERVER_INSTRUCTIONS)),
    "MCP credentials": re.compile(f"{re.escape(MCP_TOKEN)}|{re.escape(MCP_HEADER)}"),
    # What the emulator says in every call (over the sideband the service reads too).
    "call transcript": re.compile(re.escape(TRANSCRIPT)),
}


@pytest.mark.after_suite
class TestSuiteLogs:
    """The whole suite's logs."""

    def test_logs_were_captured(self, suite_logs: Path) -> None:
        """The scan below has something to read: mints were logged during the suite."""
        text = "".join(path.read_text(errors="replace") for path in suite_logs.iterdir())
        assert '"event":"request"' in text

    def test_no_secret_in_any_log_line(self, suite_logs: Path) -> None:
        """The API key, client secrets, caller credentials, server instructions and call
        transcripts never appear in a log."""
        leaks = []
        for path in sorted(suite_logs.iterdir()):
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for kind, shape in SECRET_SHAPES.items():
                    if shape.search(line):
                        leaks.append(f"{path.name}:{number}: {kind}: {line[:200]}")
        assert not leaks, "\n".join(leaks[:20])
