"""Running wrk, and reading the one `BENCH_JSON {...}` line bench/wrk/common.lua prints."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import Scenario

SOCKET_ERRORS = ("connect", "read", "write", "timeout")


class WrkError(RuntimeError):
    """wrk is missing, or exited without printing its results."""


@dataclass(frozen=True)
class WrkResult:
    """What common.lua's done() reports for one wrk run (latencies converted to ms)."""

    requests: int  # completed responses
    duration_s: float
    statuses: dict[str, int]  # HTTP status -> responses
    socket_errors: dict[str, int]  # connect/read/write/timeout -> count
    minted: int  # 2xx whose body carries a client secret ("value")
    policy_rejected: int  # reject-status answers whose body names the reject code
    issued: dict[str, int]  # requests sent per kind ("ok" / "reject"), mixed script only
    latency_recorded: bool  # False when wrk kept no latency sample (all timed out)
    p50_ms: float
    p99_ms: float


def _counts(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(key): int(value) for key, value in raw.items()}


def parse_bench_json(line: str) -> WrkResult:
    """Parse the JSON after the `BENCH_JSON ` prefix; KeyError/ValueError if it is malformed."""
    data = json.loads(line.removeprefix("BENCH_JSON "))
    if not isinstance(data, dict):
        raise ValueError("BENCH_JSON is not an object")
    latency = data["latency_us"]
    errors = data["errors"]
    recorded = int(data["requests"]) > 0 and float(latency["max"]) > 0
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=float(data["duration_us"]) / 1e6 or 1.0,
        statuses=_counts(data["statuses"]),
        socket_errors={key: int(errors[key]) for key in SOCKET_ERRORS},
        minted=int(data["minted"]),
        policy_rejected=int(data.get("policy_rejected", 0)),
        issued=_counts(data.get("issued", {})),
        latency_recorded=recorded,
        p50_ms=float(latency["p50"]) / 1000.0 if recorded else math.nan,
        p99_ms=float(latency["p99"]) / 1000.0 if recorded else math.nan,
    )


def run_wrk(
    script: Path,
    url: str,
    scenario: Scenario,
    seconds: float,
    timeout: str,
    env_extra: dict[str, str],
) -> WrkResult:
    """Run wrk with `script` against `url` for `seconds` (whole seconds, at least 1)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk not found (bench/run.sh installs it with apt-get)")
    cmd = [
        wrk,
        *("-t", str(scenario.threads), "-c", str(scenario.connections)),
        *("-d", f"{max(1, round(seconds))}s", "--timeout", timeout),
        *("-s", str(script), url),
    ]
    # The hard timeout bounds a wrk that hangs.
    proc = subprocess.run(  # noqa: S603 - a list argv built here from fixed words, no shell
        cmd,
        env={**os.environ, **env_extra},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            try:
                return parse_bench_json(line)
            except (KeyError, ValueError, TypeError) as exc:
                raise WrkError(f"unreadable BENCH_JSON ({exc!r}): {line[:300]}") from exc
    tail = f"{proc.stdout[-800:]}{proc.stderr[-800:]}"
    raise WrkError(f"wrk exited {proc.returncode} without BENCH_JSON:\n{tail}")
