"""Last in the suite: no secret ever reached a log line, in-process, captured or in a subprocess.

Marked `after_suite`, which `conftest.py`'s collection hook moves to the end,
it reads all the log output the suite produced, unscrubbed
(`tests.suite_logs`): the in-process JSON log configured by `conftest.py`,
the events tests captured with `captured_logs`, and the output of every
service started as a process (`LOG_SCRUB=false`). The mask in
`service.core.logs` is a second line of defence; this shows the first holds.

A scan over too little proves nothing, so it knows what it read. When only
part of the suite was collected (one file, `-k`), it skips, saying so; when
the whole suite ran, or under CI (which always runs everything), it fails
unless it read every kind of source and at least `REQUEST_FLOOR` request
lines.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog

from emulator import TRANSCRIPT
from service.core import logs
from tests.conftest import (
    API_KEY,
    CLIENT_SECRET,
    MCP_HEADER,
    MCP_TOKEN,
    SERVER_INSTRUCTIONS,
)
from tests.suite_logs import (
    CAPTURED,
    COLLECTION,
    IN_PROCESS,
    SERVICE_PREFIX,
    captured_logs,
)

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
SAMPLES = {
    "server API key": API_KEY,
    "client secret": CLIENT_SECRET,
    "caller key": "rtp_" + "k" * 43,
    "caller JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl",
    "server instructions": SERVER_INSTRUCTIONS,
    "MCP credentials": MCP_TOKEN,
    "call transcript": TRANSCRIPT,
}
"""One value of each shape, as code might log it by mistake."""

IN_PROCESS_SOURCE = "in-process logging"
CAPTURED_SOURCE = "captured logs"
SERVICE_SOURCE = "service processes"
OTHER_SOURCE = "other processes"
REQUEST_FLOOR = {IN_PROCESS_SOURCE: 300, CAPTURED_SOURCE: 3, SERVICE_SOURCE: 50}
"""Request lines (`"event":"request"`) each source must have shown when the whole suite ran.

About a third of what a full run writes (in-process ~1,100, captured 7,
service processes ~165 when this was written): a run that lost a source, or
most of one, falls short; adding or removing a test does not.
"""


@dataclass
class Scan:
    """What a scan of a log folder read, and the leaks it found."""

    lines: Counter[str] = field(default_factory=Counter)
    """Lines read, per source."""
    requests: Counter[str] = field(default_factory=Counter)
    """Canonical request lines read, per source."""
    leaks: list[str] = field(default_factory=list)

    def shortfalls(self) -> list[str]:
        """The sources that showed fewer request lines than their floor."""
        return [
            f"{source}: {self.requests[source]} request lines, expected at least {floor}"
            for source, floor in REQUEST_FLOOR.items()
            if self.requests[source] < floor
        ]


def source_of(path: Path) -> str:
    """Which kind of source wrote a file of the log folder (`tests.suite_logs`)."""
    if path.name == IN_PROCESS:
        return IN_PROCESS_SOURCE
    if path.name == CAPTURED:
        return CAPTURED_SOURCE
    if path.name.startswith(SERVICE_PREFIX):
        return SERVICE_SOURCE
    return OTHER_SOURCE


def scan(folder: Path) -> Scan:
    """Read every line of every file in `folder`, counting by source, matching every shape."""
    result = Scan()
    for path in sorted(folder.iterdir()):
        source = source_of(path)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            result.lines[source] += 1
            if '"event":"request"' in line:
                result.requests[source] += 1
            for kind, shape in SECRET_SHAPES.items():
                if shape.search(line):
                    result.leaks.append(f"{path.name}:{number}: {kind}: {line[:200]}")
    return result


def in_ci() -> bool:
    """Whether CI runs this (`.ci/run` sets CI=true): then the whole suite must have run."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


class TestScanner:
    """The scan itself: it can fail."""

    @pytest.mark.parametrize("kind", list(SECRET_SHAPES))
    def test_a_secret_in_a_captured_entry_is_found(self, kind: str, tmp_path: Path) -> None:
        """A secret logged inside `captured_logs` reaches the folder and the scan reports it."""
        with captured_logs(tmp_path) as entries:
            structlog.get_logger("tests.log_scan").info("oops", value=SAMPLES[kind])
        assert [entry["event"] for entry in entries] == ["oops"]
        found = scan(tmp_path)
        assert [leak.split(": ")[1] for leak in found.leaks] == [kind]
        assert found.leaks[0].startswith(f"{CAPTURED}:1: ")
        assert found.lines == Counter({CAPTURED_SOURCE: 1})

    def test_each_source_is_counted_apart(self, tmp_path: Path) -> None:
        """Request lines are counted per source, from the file names the suite's writers use."""
        request = '{"event":"request","status":200}\n'
        (tmp_path / IN_PROCESS).write_text(request * 2)
        (tmp_path / f"{SERVICE_PREFIX}8000-1-2.log").write_text(request + "uvicorn started\n")
        with captured_logs(tmp_path):
            structlog.get_logger("tests.log_scan").info("request", status=200)
        found = scan(tmp_path)
        assert found.requests == Counter(
            {IN_PROCESS_SOURCE: 2, SERVICE_SOURCE: 1, CAPTURED_SOURCE: 1}
        )
        assert found.lines[SERVICE_SOURCE] == 2
        assert found.leaks == []

    def test_too_little_is_a_shortfall(self, tmp_path: Path) -> None:
        """A folder without every source, or too few requests, falls short for each source."""
        (tmp_path / IN_PROCESS).write_text('{"event":"request"}\n')
        assert [line.split(":")[0] for line in scan(tmp_path).shortfalls()] == list(REQUEST_FLOOR)


@pytest.fixture(name="suite_scan")
def fixture_suite_scan(suite_logs: Path, request: pytest.FixtureRequest) -> Scan:
    """The scan of the whole suite's logs; skipped when only part of the suite ran (not CI)."""
    collection = request.config.stash[COLLECTION]
    if not collection.whole and not in_ci():
        pytest.skip(
            f"only part of the suite was collected ({collection.reason}): too little to scan"
        )
    logs.flush()  # lines still buffered by the in-process logger
    return scan(suite_logs)


@pytest.mark.after_suite
class TestSuiteLogs:
    """The whole suite's logs."""

    def test_the_whole_suite_was_collected(
        self, suite_scan: Scan, request: pytest.FixtureRequest
    ) -> None:
        """The scan ran over every test file, none narrowed or deselected (CI runs everything)."""
        collection = request.config.stash[COLLECTION]
        assert collection.whole, collection.reason

    def test_every_source_was_read(self, suite_scan: Scan) -> None:
        """In-process logging, captured logs and service processes each showed enough requests."""
        assert not suite_scan.shortfalls(), (suite_scan.shortfalls(), suite_scan.requests)

    def test_no_secret_in_any_log_line(self, suite_scan: Scan) -> None:
        """The API key, client secrets, caller credentials, server instructions and call
        transcripts never appear in a log."""
        assert not suite_scan.leaks, "\n".join(suite_scan.leaks[:20])
