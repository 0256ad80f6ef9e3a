"""The command line: serve (the default); `emulator`: the fake upstream; `hash-key`: a key.

`python -m service --help` says where configuration comes from. Configuration
errors exit with status 2 and a message naming the variable, never echoing a
value; a misspelt variable is a warning at start-up, or fatal with
`SERVICE_STRICT_ENV=true`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service.core.version import service_version

if TYPE_CHECKING:
    import asyncio

    from service.config import Settings, UnknownVariable

CONFIGURATION = """\
configuration (`serve`); a variable set in a source above is not read below:
  1. the process environment;
  2. `.env` in the working directory;
  3. Docker secret files in SECRETS_DIR (default /run/secrets), such as
     `openai_api_key` for OPENAI_API_KEY;
  then POLICY_PROFILES_FILE, if set: per-caller policy profiles (TOML or YAML).
Every variable is listed in .env.example. A variable with a prefix of the
service's (POLICY_, AUTH_, RATE_LIMIT_, ...) that no setting reads is named at
start-up with the nearest setting; SERVICE_STRICT_ENV=true makes that fatal.
"""


def _run(app: Any, http: type[asyncio.Protocol] | str = "httptools", **options: Any) -> None:
    """uvicorn with the server options both commands share; a drained SIGTERM exits 0."""
    import uvicorn

    # uvicorn re-raises the signal after its graceful shutdown; with the default
    # handler that would end the process with 143. A drained stop is a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, loop="uvloop", http=http, log_config=None, access_log=False, **options)


def _serve() -> int:
    """Check the configuration (exit 2 on a mistake), then serve the API with uvicorn."""
    import structlog

    from service.config import configured_names, describe, load_settings, unknown_variables
    from service.config.sources import apply_dev_defaults
    from service.core.logs import configure
    from service.server.protocol import ConnectionLimits, http_protocol

    sources = apply_dev_defaults(os.environ)
    unknown = unknown_variables(configured_names())
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(describe(exc, unknown), file=sys.stderr)  # noqa: T201 - start-up failure goes to stderr
        return 2
    if unknown and settings.service_strict_env:
        print(  # noqa: T201 - start-up failure goes to stderr
            "invalid configuration (SERVICE_STRICT_ENV=true):\n  "
            + "\n  ".join(map(str, unknown))
            + "\nFix or remove the variables (SERVICE_STRICT_ENV=false only warns).",
            file=sys.stderr,
        )
        return 2
    configure(settings.log_format, settings.log_level, scrub_secrets=settings.log_scrub)
    structlog.get_logger("service.config").info("config_sources", **sources)
    _warn_unknown(unknown)
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


def _warn_unknown(unknown: list[UnknownVariable]) -> None:
    """One start-up warning per misspelt variable: its name and the nearest setting, no value."""
    import structlog

    log = structlog.get_logger("service.server")
    for variable in unknown:
        log.warning(
            "unknown_variable",
            variable=variable.name,
            did_you_mean=variable.suggestion,
            message=str(variable),
        )


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


def _emulator(args: argparse.Namespace) -> int:
    """The fake upstream on its own port (`OPENAI_BASE_URL=http://host:port/v1`)."""
    from emulator import create_emulator
    from service.core.logs import configure

    configure("json", "INFO")
    app = create_emulator(
        args.latency_ms,
        fake_media=args.fake_media,
        max_calls=args.max_calls,
        usage_interval=args.usage_interval,
        transcript_interval=args.transcript_interval,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    _run(app, host=args.host, port=args.port)
    return 0


def _hash_key(args: argparse.Namespace) -> int:
    """Print a new caller key (give it to the caller) and its AUTH_API_KEYS entry (keep)."""
    from service.auth import new_api_key

    key, entry = new_api_key(args.name)
    print(  # noqa: T201 - the command's output
        f"key:   {key}\nentry: {entry}\n"
        "Give the key to the caller; add the entry to AUTH_API_KEYS (comma-separated)."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """`python -m service [serve | emulator | hash-key]`, with the configuration sources."""
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Mints short-lived OpenAI Realtime client secrets under a server-side "
        "policy. With no command: serve.",
        epilog=CONFIGURATION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {service_version()}")
    parser.set_defaults(command=lambda _args: _serve())
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the service (the default)",
        description="Run the service, configured as below.",
        epilog=CONFIGURATION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.set_defaults(command=lambda _args: _serve())
    emulator = commands.add_parser(
        "emulator",
        help="run the fake OpenAI upstream (development, tests, benchmarks)",
        description="Run the fake OpenAI upstream; point OPENAI_BASE_URL at http://HOST:PORT/v1.",
    )
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8080)
    emulator.add_argument("--latency-ms", type=float, default=0.0)
    emulator.add_argument(
        "--fake-media",
        action="store_true",
        help="answer calls with a canned SDP answer and no media (no aiortc; benchmarks)",
    )
    emulator.add_argument(
        "--max-calls", type=int, default=None, help="open calls held (default 32; fake media 10000)"
    )
    emulator.add_argument(
        "--usage-interval",
        type=float,
        default=5.0,
        help="seconds between a Live call's session.usage.updated events (0: none)",
    )
    emulator.add_argument(
        "--transcript-interval",
        type=float,
        default=None,
        help="seconds between a Live call's session.input_transcript.delta events (default none)",
    )
    emulator.add_argument(
        "--webhook-url",
        default=None,
        help="where the telephone posts OpenAI's webhooks (the service's /v1/webhooks/openai)",
    )
    emulator.add_argument(
        "--webhook-secret",
        default=None,
        help="the whsec_... secret the webhooks are signed with (the service's)",
    )
    emulator.set_defaults(command=_emulator)
    hash_key = commands.add_parser(
        "hash-key",
        help="make a caller key and its AUTH_API_KEYS entry",
        description="Print a new caller key and the AUTH_API_KEYS entry that accepts it.",
    )
    hash_key.add_argument("name", nargs="?", default="client", help="the caller's name")
    hash_key.set_defaults(command=_hash_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command (serve when none is given)."""
    args = build_parser().parse_args(argv)
    code: int = args.command(args)
    return code
