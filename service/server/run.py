"""The command line: serve (the default); `emulator`: the fake upstream; `hash-key`: a key.

Configuration errors exit with status 2 and a message naming the variable,
never echoing a secret value.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    import asyncio

    from service.config import Settings


def _run(app: Any, http: type[asyncio.Protocol] | str = "httptools", **options: Any) -> None:
    """uvicorn with the server options both commands share; a drained SIGTERM exits 0."""
    import uvicorn

    # uvicorn re-raises the signal after its graceful shutdown; with the default
    # handler that would end the process with 143. A drained stop is a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, loop="uvloop", http=http, log_config=None, access_log=False, **options)


def _serve() -> int:
    import structlog

    from service.config import describe, load_settings
    from service.config.sources import apply_dev_defaults
    from service.core.logs import configure
    from service.server.protocol import ConnectionLimits, http_protocol

    sources = apply_dev_defaults(os.environ)
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(describe(exc), file=sys.stderr)  # noqa: T201 - start-up failure goes to stderr
        return 2
    configure(settings.log_format, settings.log_level, scrub_secrets=settings.log_scrub)
    structlog.get_logger("service.config").info("config_sources", **sources)
    _prepare_metrics(settings)
    limits = ConnectionLimits(
        read_timeout=settings.http_read_timeout_seconds,
        max_connections=settings.max_connections_per_worker,
    )
    _run(
        "service.server.asgi:app",
        http=http_protocol(limits),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    return 0


def _prepare_metrics(settings: Settings) -> None:
    """Multiprocess metrics for several workers, and the separate metrics port if asked."""
    if not settings.metrics_enabled:
        return
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before any worker imports prometheus_client: they inherit the variable.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rtp-metrics-")
    if settings.metrics_port is not None:
        from service.core.metrics import serve_separately

        serve_separately(settings.metrics_port, settings.host)


def _emulator(argv: list[str]) -> int:
    from emulator import create_emulator
    from service.core.logs import configure

    parser = argparse.ArgumentParser(prog="python -m service emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--fake-media",
        action="store_true",
        help="answer calls with a canned SDP answer and no media (no aiortc; benchmarks)",
    )
    parser.add_argument(
        "--max-calls", type=int, default=None, help="open calls held (default 32; fake media 10000)"
    )
    parser.add_argument(
        "--usage-interval",
        type=float,
        default=5.0,
        help="seconds between a Live call's session.usage.updated events",
    )
    args = parser.parse_args(argv)
    configure("json", "INFO")
    app = create_emulator(
        args.latency_ms,
        fake_media=args.fake_media,
        max_calls=args.max_calls,
        usage_interval=args.usage_interval,
    )
    _run(app, host=args.host, port=args.port)
    return 0


def _hash_key(argv: list[str]) -> int:
    """Print a new caller key (give it to the caller) and its AUTH_API_KEYS entry (keep)."""
    from service.auth import new_api_key

    parser = argparse.ArgumentParser(prog="python -m service hash-key")
    parser.add_argument("name", nargs="?", default="client", help="the caller's name")
    args = parser.parse_args(argv)
    key, entry = new_api_key(args.name)
    print(  # noqa: T201 - the command's output
        f"key:   {key}\nentry: {entry}\n"
        "Give the key to the caller; add the entry to AUTH_API_KEYS (comma-separated)."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch the sub-command."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["emulator"]:
        return _emulator(args[1:])
    if args[:1] == ["hash-key"]:
        return _hash_key(args[1:])
    if args:
        print(  # noqa: T201 - a usage error goes to stderr
            f"unknown command: {args[0]} (use: emulator, hash-key)", file=sys.stderr
        )
        return 2
    return _serve()
