"""Logging: JSON lines on stdout (or console output for humans), secrets scrubbed in both.

structlog renders each event once, with orjson; one canonical line per
request is the main product (written by `service.api.middleware`). Two
choices keep it cheap on the mint path, where it was measured at ~40 µs of CPU
per request with a processor that scrubbed every field and a write+flush per
line:

- Scrubbing runs once on the rendered line, and only when the line contains
  something shaped like a credential (`sk-`, `ek_`, `rtp_`, `Bearer`, a JWT);
  matches are masked. This is a second line of defence: code never logs
  secrets in the first place.
- JSON lines go to a `LineBuffer` that a background thread writes out every
  `FLUSH_SECONDS` (and at exit), instead of a syscall per line.

A logged exception (`log.exception`, or a library's record with exc_info)
is rendered as its type and where it was raised (and the innermost frame of
the project's own code), with the last `FRAMES_SHOWN` frames
(`bounded_exception`): never the message, which can
carry what the code was reading (an event's text), and never a whole stack,
which a RecursionError makes a thousand frames (150 KB) long.

`LOG_SCRUB=false` turns the mask off. Only the test suite does that: it
scans every line it produced for secrets, which must show that the code
never logs one, not that the mask hid it.
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
import sysconfig
import threading
import traceback
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TextIO

import orjson
import structlog

SECRET = re.compile(
    rb"(sk-[A-Za-z0-9_\-]{6,}|ek_[A-Za-z0-9_\-]{6,}|rtp_[A-Za-z0-9_\-]{20,}"
    rb"|Bearer\s+[^\s\"]+|eyJ[\w\-]+\.[\w\-]+\.[\w\-]*)"
)
SUSPECT = re.compile(rb"sk-|ek_|rtp_|Bearer|eyJ")
FLUSH_SECONDS = 0.1
FRAMES_SHOWN = 5
"""A logged exception shows this many frames, the innermost: where it was raised, and how."""
SITE = re.compile(r".*/(?:site|dist)-packages/")
STDLIB = f"{sysconfig.get_paths()['stdlib']}/"
ROOT = f"{Path(__file__).resolve().parents[2]}/"
"""The project's folder: a frame there is the service's (or the emulator's) own code."""


def _where(frame: traceback.FrameSummary) -> str:
    """`service/calls/fixed.py:85 in _normal`: a frame by file (within the project, its
    package or the standard library), line and function."""
    name = SITE.sub("", frame.filename.removeprefix(ROOT).removeprefix(STDLIB))
    return f"{name}:{frame.lineno} in {frame.name}"


def _own(filename: str) -> bool:
    return filename.startswith(ROOT) and SITE.match(filename) is None


def _frames(
    tb: TracebackType | None,
) -> tuple[list[traceback.FrameSummary], traceback.FrameSummary | None, int]:
    """The innermost `FRAMES_SHOWN` frames of `tb` (without their source lines), the
    innermost of the project's own, and how many there are: a walk, never a list of all."""
    last: deque[tuple[Any, int]] = deque(maxlen=FRAMES_SHOWN)
    own: tuple[Any, int] | None = None
    count = 0
    for frame, line in traceback.walk_tb(tb):
        last.append((frame, line))
        if _own(frame.f_code.co_filename):
            own = (frame, line)
        count += 1
    summaries = list(traceback.StackSummary.extract(iter(last), lookup_lines=False))
    mine = traceback.StackSummary.extract(iter([own]), lookup_lines=False) if own else None
    return summaries, mine[0] if mine else None, count


def bounded_exception(exc_info: Any) -> str:
    """An exception as one short text: type, where it was raised (and where in the project,
    if that was elsewhere), the last frames, and its cause's type; never its message (see
    the module docstring)."""
    kind, error, tb = exc_info
    frames, own, count = _frames(tb)
    text = kind.__name__ if isinstance(kind, type) else str(kind)
    if frames:
        text += f" at {_where(frames[-1])}"
        if own is not None and _where(own) not in {_where(frame) for frame in frames}:
            text += f", from {_where(own)}"
    if count > 1:
        path = " < ".join(_where(frame) for frame in reversed(frames[:-1]))
        text += f" (last {len(frames)} of {count} frames: {path})"
    cause = error.__cause__ or error.__context__ if isinstance(error, BaseException) else None
    if cause is not None:
        text += f"; from {type(cause).__name__}"
    return text


format_bounded_exc_info = structlog.processors.ExceptionRenderer(bounded_exception)


def scrub(line: bytes) -> bytes:
    """Mask anything shaped like a credential; the common line is not even searched."""
    if SUSPECT.search(line):
        return SECRET.sub(lambda m: m.group(0)[:3] + b"***", line)
    return line


def _render(_logger: Any, _name: str, event: Any) -> bytes:
    return scrub(orjson.dumps(event, default=str))


def _render_unscrubbed(_logger: Any, _name: str, event: Any) -> bytes:
    return orjson.dumps(event, default=str)


def _scrubbed_text(render: Any) -> Any:
    """A text renderer (the console's) whose output is masked like the JSON lines."""

    def scrubbed(logger: Any, name: str, event: Any) -> str:
        return scrub(str(render(logger, name, event)).encode()).decode()

    return scrubbed


def request_headline(_logger: Any, _name: str, event: Any) -> Any:
    """Console only: a request line leads with `POST /path 200 12.3ms`, the rest after it."""
    if event.get("event") == "request" and "method" in event:
        head = (event.pop("method"), event.pop("path", ""), event.pop("status", ""))
        event["event"] = f"{head[0]} {head[1]} {head[2]} {event.pop('total_ms', '')}ms"
    return event


class Sink(Protocol):
    """Where buffered lines go: a binary stream."""

    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> Any: ...


class LineBuffer:
    """Collects log lines; one daemon thread writes them every FLUSH_SECONDS and at exit.

    One per process: `configure` may run more than once (the command line,
    then uvicorn's worker import, then tests), and each run points the one
    buffer at its stream instead of starting another thread and exit hook.
    """

    def __init__(self, stream: Sink) -> None:
        self._stream = stream
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="log-flusher", daemon=True).start()
        atexit.register(self.flush)

    def point_at(self, stream: Sink) -> None:
        """Write what is buffered to the old stream, then everything after to `stream`."""
        self.flush()
        with self._lock:
            self._stream = stream

    def write(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        """Write out what is buffered (also called by structlog: cheap when empty)."""
        with self._lock:
            lines, self._lines = self._lines, []
            stream = self._stream
        if lines:
            stream.write(b"".join(lines))
            stream.flush()

    def _run(self) -> None:
        while not self._wake.wait(FLUSH_SECONDS):
            self.flush()


class _BufferedLogger:
    """structlog logger writing rendered bytes lines into the shared buffer."""

    def __init__(self, buffer: LineBuffer) -> None:
        self._buffer = buffer

    def msg(self, message: bytes) -> None:
        self._buffer.write(message + b"\n")

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


_buffer: LineBuffer | None = None


def flush() -> None:
    """Write out buffered lines now (at shutdown)."""
    if _buffer is not None:
        _buffer.flush()


def configure(
    log_format: str = "json",
    level: str = "INFO",
    stream: TextIO | None = None,
    *,
    scrub_secrets: bool = True,
) -> None:
    """Set up structlog and route the stdlib's (uvicorn's) records through it."""
    global _buffer
    stream = stream or sys.stdout
    level = level.upper()
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    extra: list[Any] = []
    if log_format == "console":
        console = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        renderer: Any = _scrubbed_text(console) if scrub_secrets else console
        factory: Any = structlog.WriteLoggerFactory(stream)
        extra.append(request_headline)
    else:
        sink = stream.buffer if hasattr(stream, "buffer") else _Binary(stream)
        if _buffer is None:
            _buffer = LineBuffer(sink)
        else:
            _buffer.point_at(sink)
        buffer = _buffer
        renderer = _render if scrub_secrets else _render_unscrubbed
        factory = lambda *_: _BufferedLogger(buffer)  # noqa: E731 - structlog wants a callable
    structlog.configure(
        processors=[*shared, format_bounded_exc_info, *extra, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _route_stdlib(stream, shared, log_format, level, scrub_secrets)


def _route_stdlib(
    stream: TextIO, shared: list[Any], log_format: str, level: str, scrub_secrets: bool
) -> None:
    """uvicorn and other libraries log through the stdlib: render them the same way."""
    render = _render if scrub_secrets else _render_unscrubbed

    def as_text(logger: Any, name: str, event: Any) -> str:
        return render(logger, name, event).decode()

    console = structlog.dev.ConsoleRenderer(colors=False)
    renderer: Any = (
        (_scrubbed_text(console) if scrub_secrets else console)
        if (log_format == "console")
        else as_text
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, format_bounded_exc_info],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The canonical request line replaces uvicorn's access log.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request at INFO: on the hot path that is a second line per mint.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class _Binary:
    """A bytes view of a text stream that has no `.buffer` (e.g. a test's StringIO)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        return self._stream.write(data.decode())

    def flush(self) -> None:
        self._stream.flush()
