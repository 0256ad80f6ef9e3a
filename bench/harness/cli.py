"""The command line: options, the loop over scenarios and peers, the report files."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from .goals import judge
from .measure import UpstreamUnavailable, measure_scenario
from .peers import PEER_ORDER
from .processes import stop_all
from .report import render
from .results import Row, relate
from .settings import LOG_DIR, RESULTS_DIR, RunSettings, Scenario, build_scenarios


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="Benchmark realtime-token-proxy against its peers."
    )
    add = parser.add_argument
    add("--duration", type=float, default=4.0, help="seconds per measured window (default 4)")
    add("--windows", type=int, default=3, help="measured windows per row; medians (default 3)")
    add("--retries", type=int, default=1, help="extra windows to replace noisy ones (default 1)")
    add("--warmup", type=float, default=2.0, help="warm-up seconds per row, 0 = none (default 2)")
    add("--peers", default=",".join(PEER_ORDER), help=f"comma list from {','.join(PEER_ORDER)}")
    add("--scenarios", default="1,2,3", help="comma list from 1,2,3")
    add("--connections-1", type=int, default=50)
    add("--connections-2", type=int, default=400)
    add("--latency-ms-2", type=float, default=200.0)
    add("--threads", type=int, default=2, help="wrk threads in scenarios 1 and 2")
    add("--timeout", default="5s", help="wrk --timeout")
    add("--ready-timeout", type=float, default=30.0, help="seconds a process has to get ready")
    add(
        "--noisy-percent",
        type=float,
        default=25.0,
        help="other processes' CPU, in %% of one core, that makes a window noisy (default 25)",
    )
    add(
        "--quiet-wait",
        type=float,
        default=2.0,
        help="seconds each window waits for a busy machine to calm down (default 2)",
    )
    add("--reject-voice", default="bench-disallowed-voice", help="a voice the policy refuses")
    add("--reject-status", type=int, default=403, help="status of a policy rejection")
    add("--reject-code", default="policy_violation", help="text a rejection's body contains")
    add(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env for the service peer (repeatable)",
    )
    add(
        "--out",
        type=Path,
        default=RESULTS_DIR / "latest.md",
        help="markdown report; its .json twin is written next to it",
    )
    return parser


def _options(argv: list[str]) -> tuple[RunSettings, dict[int, Scenario], list[str], Path]:
    """Validated options; SystemExit(2) with a message when they are not."""
    parser = _parser()
    args = parser.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := [p for p in peers if p not in PEER_ORDER]:
        parser.error(f"unknown peer(s): {', '.join(unknown)}")
    numbers = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    if not numbers <= {"1", "2", "3"}:
        parser.error("--scenarios takes numbers from 1,2,3")
    if args.duration <= 0 or args.windows < 1 or args.retries < 0:
        parser.error("--duration must be > 0, --windows >= 1, --retries >= 0")
    service_env: dict[str, str] = {}
    for item in args.service_env:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--service-env wants KEY=VALUE, got {item!r}")
        service_env[key] = value
    every = build_scenarios(args.connections_1, args.connections_2, args.latency_ms_2, args.threads)
    settings = RunSettings(
        window_s=args.duration,
        windows=args.windows,
        retries=args.retries,
        warmup_s=max(0.0, args.warmup),
        timeout=args.timeout,
        ready_timeout_s=args.ready_timeout,
        quiet_wait_s=max(0.0, args.quiet_wait),
        noisy_percent=args.noisy_percent,
        reject_voice=args.reject_voice,
        reject_status=args.reject_status,
        reject_code=args.reject_code,
        service_env=service_env,
        python=sys.executable,
    )
    ordered = [p for p in PEER_ORDER if p in peers]
    return settings, {n: every[n] for n in sorted(map(int, numbers))}, ordered, args.out


def _raise_nofile() -> None:
    """400 connections per peer plus the upstream side need more than 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        print(f"warning: ulimit -n is {soft}; 400-connection runs may fail", file=sys.stderr)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _progress(row: Row) -> str:
    if not row.ok:
        return (row.failure.splitlines() or ["failed"])[0]
    return (
        f"{row.mints_per_s:,.0f} mints/s, p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms,"
        f" errors {row.errors}, {row.cpu_us_per_mint:,.0f} CPU µs/mint"
        + (" (noisy)" if row.noisy else "")
    )


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the report and write it; 1 when the emulator cannot start."""
    argv = list(sys.argv[1:] if argv is None else argv)
    settings, scenarios, peers, out = _options(argv)
    _raise_nofile()
    signal.signal(signal.SIGTERM, _on_sigterm)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.monotonic()
    try:
        for scenario in scenarios.values():
            print(f"[{scenario.label}] starting {', '.join(peers)}", file=sys.stderr, flush=True)
            for row in measure_scenario(peers, scenario, settings):
                print(f"[{scenario.label}] {row.peer}: {_progress(row)}", file=sys.stderr)
                rows.append(row)
    except UpstreamUnavailable as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all()
    elapsed_s = time.monotonic() - started
    relate(rows, scenarios)
    goals = judge(rows, scenarios)
    report = render(rows, goals, scenarios, settings, argv, elapsed_s)
    print(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    raw = {
        "argv": argv,
        "elapsed_s": elapsed_s,
        "settings": asdict(settings),
        "scenarios": {n: asdict(s) for n, s in scenarios.items()},
        "goals": [asdict(g) for g in goals],
        "rows": [asdict(r) for r in rows],
    }
    out.with_suffix(".json").write_text(json.dumps(_json_safe(raw), indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0
