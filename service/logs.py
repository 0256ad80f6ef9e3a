"""Logging: JSON lines on stdout (or console output for humans), secrets scrubbed.

structlog renders each event once, with orjson, straight to stdout: one
canonical line per request is the main product (see `service.app`). Values
that look like credentials (`sk-...` keys, `ek_...` client secrets, bearer
tokens) are masked by the last processor before rendering, as a second line of
defence behind the rule that code never logs them in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|ek_[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|eyJ[\w\-]+\.[\w\-]+\.[\w\-]*)"
)


def _scrub_text(text: str) -> str:
    return SECRET.sub(lambda m: m.group(0)[:3] + "***", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def scrub_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask anything shaped like a credential in every field of the event."""
    for key, value in event.items():
        event[key] = _scrub(value)
    return event


def _dumps(event: Any, **_kw: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def configure(log_format: str = "json", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up structlog and route the stdlib's (uvicorn's) records through it."""
    stream = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer(serializer=_dumps)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, scrub_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                scrub_secrets,
                renderer,
            ],
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
