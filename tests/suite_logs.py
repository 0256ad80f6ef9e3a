"""The suite's log folder: which file holds which source, and the capture that writes there.

`conftest.py` points the service's in-process JSON log at `IN_PROCESS` in the
folder named by `RTP_TEST_LOG_DIR`; services started as processes write
`service-*.log` beside it (`tests.servers.log_file`); and `captured_logs`
appends what a test captured to `CAPTURED`. `tests/test_log_scan.py` reads
them all at the end of the suite.

`captured_logs` exists because `structlog.testing.capture_logs` swaps the
processors for its block: the events it captures never reach the in-process
file, so a secret logged inside such a block would slip past the scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

LOG_DIR_ENV = "RTP_TEST_LOG_DIR"
IN_PROCESS = "in-process.jsonl"
"""The in-process JSON log (unscrubbed), configured by `conftest.py`."""
CAPTURED = "captured.jsonl"
"""Every event captured by `captured_logs`, one JSON line each."""
SERVICE_PREFIX = "service-"
"""`python -m service` processes (the service, the emulator): `service-<port>-...log`."""


def log_folder() -> Path:
    """The suite's log folder (set by conftest's session fixture before any test runs)."""
    return Path(os.environ[LOG_DIR_ENV])


@contextmanager
def captured_logs(folder: Path | None = None) -> Iterator[list[MutableMapping[str, Any]]]:
    """`capture_logs()`, whose entries are also written to the log folder for the scan.

    Yields the list of captured event dicts as `capture_logs` does. On exit,
    failed test or not, each entry is appended to `CAPTURED` in `folder` (the
    suite's log folder unless given) as a JSON line, rendered as the service
    renders its own lines (orjson, `default=str`).
    """
    with capture_logs() as entries:
        try:
            yield entries
        finally:
            lines = b"".join(
                orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n"
                for entry in entries
            )
            with (folder or log_folder()).joinpath(CAPTURED).open("ab") as stream:
                stream.write(lines)


@dataclass(frozen=True, slots=True)
class Collection:
    """Whether this run collected the whole suite, and if not, why not (for the log scan)."""

    whole: bool
    reason: str

    @classmethod
    def of(cls, session: pytest.Session, modules: set[str], deselected: list[str]) -> Collection:
        """The collection `session` finished with: `modules` collected, `deselected` left out.

        Whole means: every `test_*.py` under tests/ collected (or skipped
        itself), no test deselected (`-k`, `-m`, `--deselect`, `--lf`), and no
        argument narrowed to part of a file (`file.py::Class`).
        """
        narrowed = [arg for arg in session.config.args if "::" in arg]
        if narrowed:
            return cls(False, f"arguments narrowed to parts of files: {', '.join(narrowed)}")
        if deselected:
            return cls(False, f"{len(deselected)} tests deselected (-k, -m, --deselect or --lf)")
        root = session.config.rootpath
        on_disk = {
            path.relative_to(root).as_posix() for path in Path(__file__).parent.rglob("test_*.py")
        }
        missing = sorted(on_disk - modules)
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            return cls(False, f"{len(missing)} of {len(on_disk)} test files not collected: {shown}")
        return cls(True, f"all {len(on_disk)} test files collected")


COLLECTION = pytest.StashKey[Collection]()
"""Where `conftest.py` keeps this run's `Collection` (`config.stash`)."""
