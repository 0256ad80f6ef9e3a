"""The performance goals (issue #9, raised by issue #16), judged on a run's rows."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .peers import label
from .results import Row
from .settings import Scenario

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"
MIN_VS_EXPRESS = 1.5  # goal 1: half again the Express route's mints/s
MIN_VS_IDEAL = 0.8  # goal 2: 400 connections against a 200 ms upstream, of the ideal mints/s
MAX_ADDED_P50_MS = 1.0  # goal 3


@dataclass(frozen=True)
class Goal:
    """One goal, its verdict and the figures behind it."""

    goal: str
    verdict: str
    figures: str


def _row(rows: list[Row], peer: str, scenario: int) -> Row | None:
    return next((r for r in rows if r.ok and r.peer == peer and r.scenario == scenario), None)


def _cpu(service: Row, express: Row) -> str:
    """CPU per mint moves much less than mints/s when others share the cores: a cross-check."""
    if not (math.isfinite(service.cpu_us_per_mint) and math.isfinite(express.cpu_us_per_mint)):
        return ""
    return (
        f"; CPU per mint: service {service.cpu_us_per_mint:,.0f} µs,"
        f" Express {express.cpu_us_per_mint:,.0f} µs"
    )


def _noise(*rows: Row) -> str:
    noisy = [f"{label(r.peer)} sc{r.scenario}" for r in rows if r.noisy]
    return f" (noisy: {', '.join(noisy)}; rerun on a quiet machine)" if noisy else ""


def _throughput(rows: list[Row], scenarios: dict[int, Scenario]) -> Goal:
    sc = scenarios.get(1)
    name = f"{sc.label if sc else 'scenario 1'}: the service mints >= {MIN_VS_EXPRESS:.1f}x"
    name += " the Express route (API-key auth, policy, JSON logs, metrics on)"
    service, express = _row(rows, "service", 1), _row(rows, "express", 1)
    if sc is None or service is None or express is None or math.isnan(service.vs_express):
        return Goal(name, NOT_MEASURED, "needs rows (b) and (d) of scenario 1")
    verdict = MET if service.vs_express >= MIN_VS_EXPRESS else NOT_MET
    figures = (
        f"{service.vs_express:.2f}x: service {service.mints_per_s:,.0f} mints/s,"
        f" Express {express.mints_per_s:,.0f}" + _cpu(service, express) + _noise(service, express)
    )
    return Goal(name, verdict, figures)


def _slow_upstream(rows: list[Row], scenarios: dict[int, Scenario]) -> Goal:
    sc = scenarios.get(2)
    name = f"{sc.label if sc else 'scenario 2'}: 0 errors and >= {MIN_VS_IDEAL:g} of ideal"
    service, express = _row(rows, "service", 2), _row(rows, "express", 2)
    if sc is None or service is None or express is None or math.isnan(service.vs_express):
        return Goal(name, NOT_MEASURED, "needs rows (b) and (d) of scenario 2")
    met = service.errors == 0 and service.vs_ideal >= MIN_VS_IDEAL
    figures = (
        f"{service.errors:,} errors; {service.vs_express:.2f}x: service"
        f" {service.mints_per_s:,.0f} mints/s, Express {express.mints_per_s:,.0f};"
        f" service at {service.vs_ideal:.2f} of ideal ({sc.ideal or 0:,.0f} mints/s),"
        f" Express at {express.vs_ideal:.2f}" + _cpu(service, express) + _noise(service, express)
    )
    return Goal(name, MET if met else NOT_MET, figures)


def _added_latency(rows: list[Row]) -> Goal:
    name = f"1 conn: the service adds <= {MAX_ADDED_P50_MS:g} ms at p50 over the emulator direct"
    service, direct = _row(rows, "service", 3), _row(rows, "emulator", 3)
    if service is None or direct is None or math.isnan(service.added_p50_ms):
        return Goal(name, NOT_MEASURED, "needs rows (a) and (d) of scenario 3")
    verdict = MET if service.added_p50_ms <= MAX_ADDED_P50_MS else NOT_MET
    figures = (
        f"{service.added_p50_ms:+.2f} ms: p50 {service.p50_ms:.2f} ms vs {direct.p50_ms:.2f} ms"
        f" direct (p99 {service.added_p99_ms:+.2f} ms)" + _noise(service, direct)
    )
    return Goal(name, verdict, figures)


def _cpu_per_mint(rows: list[Row]) -> Goal:
    name = "CPU µs per mint reported for every peer row (peer tree CPU / mints)"
    done = [r for r in rows if r.ok]
    if not done:
        return Goal(name, NOT_MEASURED, "no row ran")
    # A row without a single mint has nothing to divide by; it says so ("—").
    missing = [r for r in done if math.isnan(r.cpu_us_per_mint) and r.mints_per_s > 0]
    shown = [
        f"{label(r.peer)} {r.cpu_us_per_mint:,.0f}"
        for r in done
        if r.scenario == 1 and math.isfinite(r.cpu_us_per_mint)
    ]
    figures = "in the table; scenario 1: " + ", ".join(shown) if shown else "in the table"
    return Goal(name, NOT_MET if missing else MET, figures)


def judge(rows: list[Row], scenarios: dict[int, Scenario]) -> list[Goal]:
    """Every goal with its verdict; rows must have been through `results.relate`."""
    return [
        _throughput(rows, scenarios),
        _slow_upstream(rows, scenarios),
        _added_latency(rows),
        _cpu_per_mint(rows),
    ]
