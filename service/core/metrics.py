"""Prometheus metrics, correct with any number of workers.

With `WORKERS>1` every worker writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode, set up by
`python -m service` before the workers start) and a scrape sums them, so the
numbers are the service's, not one worker's. `METRICS_PORT` serves them on a
separate port from the supervisor process, so a gateway routing to the API
port never exposes them.

Label values are bounded (endpoints, outcomes, field names, error kinds);
never identities, which are unbounded and personal. Outcomes are the error
classes' own labels (`service.core.errors`), so the two cannot drift apart.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from service.core.errors import caller_errors

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

MINTS = Counter(
    "rtp_mints_total",
    "Mint and call-creation requests by endpoint and outcome.",
    ["endpoint", "outcome"],
)
POLICY_VIOLATIONS = Counter(
    "rtp_policy_violations_total", "Policy violations (rejected or clamped) by field.", ["field"]
)
UPSTREAM_LATENCY = Histogram(
    "rtp_upstream_latency_seconds",
    "Time for OpenAI to answer a mint or a call creation, retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0),
)
UPSTREAM_ERRORS = Counter("rtp_upstream_errors_total", "Upstream failures by kind.", ["kind"])
RATE_LIMITED = Counter("rtp_rate_limited_total", "Mints refused by a rate limit.", ["source"])
IN_FLIGHT = Gauge(
    "rtp_requests_in_flight", "HTTP requests being served.", multiprocess_mode="livesum"
)

CALLS_SUPERVISED = Gauge(
    "rtp_calls_supervised",
    "Calls this service supervises over their sideband now.",
    multiprocess_mode="livesum",
)
CALL_OVERRIDES = Counter(
    "rtp_call_overrides_total",
    "Policy overrides seen on a call, by scope (session, response, item, tool) and by "
    "action (revert, cancel, delete, hangup).",
    ["scope", "action"],
)
CALL_HANGUPS = Counter(
    "rtp_call_hangups_total", "Calls the service hung up, by reason.", ["reason"]
)
CALL_TURNS = Counter(
    "rtp_call_turns_total",
    "CALLS_RESPONSES=server: committed user turns, by outcome (answered: the supervisor "
    "started a response; quota: the caller's day was spent, the call hung up).",
    ["outcome"],
)
COST_USD = Counter(
    "rtp_cost_usd_total",
    "What supervised calls cost, in dollars, at PRICES_FILE's prices, by price entry and kind "
    "(realtime: responses; transcription: input transcriptions; live: GPT-Live seconds).",
    ["model", "kind"],
)
DEPLOYMENT_CEILING = Counter(
    "rtp_deployment_ceiling_reached_total",
    "Times this worker found QUOTA_USD_PER_DAY_TOTAL reached and hung up its live calls.",
)
SAFETY_BLOCKS = Counter(
    "rtp_safety_blocks_total",
    "Callers suspended because OpenAI blocked their safety identifier (safety_identifier.blocked).",
)
CALL_ENDINGS = Counter("rtp_calls_ended_total", "Supervised calls that ended, by how.", ["how"])
SIDEBAND_RECONNECTS = Counter(
    "rtp_sideband_reconnects_total", "Sideband connections re-established after a drop."
)
SIDEBAND_FAILURES = Counter(
    "rtp_sideband_failures_total",
    "Failed sideband attachments: a refused connect, or a connection that died unstable.",
)
SIDEBAND_EVENTS_DROPPED = Counter(
    "rtp_sideband_events_dropped_total",
    "Sideband frames dropped unread, by why (budget: over "
    "CALLS_SIDEBAND_MAX_EVENTS_PER_SECOND; unreadable: not a JSON object).",
    ["why"],
)
CALL_TAKEOVERS = Counter(
    "rtp_call_takeovers_total", "Calls taken over from a supervisor that went away."
)
USAGE_TOKENS = Counter("rtp_call_usage_tokens_total", "Tokens used by supervised Realtime calls.")
USAGE_SECONDS = Counter(
    "rtp_call_usage_seconds_total", "Seconds of supervised calls, by kind.", ["kind"]
)

OUTCOMES = {error.status_code: error.outcome for error in caller_errors()}


def outcome_of(status: int, dry_run: bool) -> str:
    """A bounded outcome label for a mint endpoint's response status."""
    if status in (200, 201):  # 201: a call created (POST /v1/realtime/calls)
        return "dry_run" if dry_run else "minted"
    return OUTCOMES.get(status, "other")


def registry() -> CollectorRegistry | None:
    """The registry to expose: all workers' files in multiprocess mode, else the default."""
    if os.environ.get(MULTIPROC_ENV):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return collected
    return None


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    chosen = registry()
    return (generate_latest(chosen) if chosen else generate_latest()), CONTENT_TYPE_LATEST


def serve_separately(port: int, host: str) -> None:
    """Expose metrics on their own port from this (the supervisor) process."""
    chosen = registry()
    if chosen is None:
        start_http_server(port, addr=host)
    else:
        start_http_server(port, addr=host, registry=chosen)
