"""Windows and rows: what wrk's counts mean for the benchmark, and how windows add up to a row."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from .sampling import CpuUse
from .settings import Scenario
from .wrk import WrkResult


@dataclass(frozen=True)
class Tally:
    """One wrk run's answers, sorted into mints, intended rejections and errors."""

    mints: int
    expected_rejects: int
    errors: int
    notes: tuple[str, ...]


def tally(result: WrkResult, mixed: bool) -> Tally:
    """Sort `result`'s answers; `mixed` means some requests were meant to be refused."""
    n2xx = sum(n for code, n in result.statuses.items() if code.startswith("2"))
    non2xx = sum(result.statuses.values()) - n2xx
    ok_issued, reject_issued = result.issued.get("ok", 0), result.issued.get("reject", 0)
    if mixed:
        # wrk cannot tie a response to its request, so compare totals: at most
        # `reject_issued` policy rejections are intended, and at most `ok_issued`
        # 2xx can be genuine mints (more would mean a refused request was minted).
        expected = min(result.policy_rejected, reject_issued)
        mints = min(result.minted, ok_issued)
    else:
        expected, mints = 0, result.minted
    notes: list[str] = []
    if not result.requests:
        notes.append(
            "no response completed in the window (requests still in flight when wrk"
            " stops count neither as answers nor as errors)"
        )
    elif not result.latency_recorded:
        notes.append("every response came after wrk's --timeout, so wrk recorded no latency")
    if n2xx > result.minted:
        notes.append(f"{n2xx - result.minted} 2xx answers carried no client secret")
    if mixed and result.minted > ok_issued:
        notes.append("more mints than allowed requests: a policy rejection was minted")
    if mixed and result.policy_rejected > reject_issued:
        notes.append(
            f"{result.policy_rejected - reject_issued} policy rejections of requests"
            " the bench policy should allow"
        )
    errors = (n2xx - mints) + (non2xx - expected) + sum(result.socket_errors.values())
    return Tally(mints, expected, errors, tuple(notes))


@dataclass
class Window:
    """One measured wrk run against a warm peer."""

    result: WrkResult
    tally: Tally
    cpu: CpuUse
    noisy: bool  # other processes used more CPU than the run allows
    kept: bool = False  # counted in the row's medians

    @property
    def mints_per_s(self) -> float:
        """Mints per second over the window."""
        return self.tally.mints / self.result.duration_s


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


@dataclass
class Row:
    """One peer under one scenario: the medians of its kept windows, and what surrounds them."""

    peer: str
    scenario: int
    connections: int
    latency_ms: float
    ok: bool = False
    failure: str = ""
    windows: list[Window] = field(default_factory=list)
    mints_per_s: float = math.nan  # median over kept windows
    mints_per_s_min: float = math.nan
    mints_per_s_max: float = math.nan
    requests_per_s: float = math.nan
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    errors: int = 0  # over every window, kept or not
    expected_rejects: int = 0
    cpu_us_per_mint: float = math.nan  # peer tree CPU over kept windows / their mints
    cpu_percent: float = math.nan
    emulator_cpu_percent: float = math.nan
    wrk_cpu_percent: float = math.nan
    other_cpu_percent: float = math.nan
    noisy: bool = False  # a kept window was noisy: not enough quiet ones
    peak_rss_mib: float = math.nan
    idle_rss_mib: float = math.nan
    ready_ms: float = math.nan
    vs_express: float = math.nan
    vs_ideal: float = math.nan
    added_p50_ms: float = math.nan
    added_p99_ms: float = math.nan
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[Window]:
        """The windows the figures come from."""
        return [w for w in self.windows if w.kept]

    def statuses(self) -> dict[str, int]:
        """HTTP statuses summed over every window."""
        total: Counter[str] = Counter()
        for window in self.windows:
            total.update(window.result.statuses)
        return dict(sorted(total.items()))

    def socket_errors(self) -> dict[str, int]:
        """wrk's socket errors summed over every window."""
        total: Counter[str] = Counter()
        for window in self.windows:
            total.update(window.result.socket_errors)
        return {key: n for key, n in total.items() if n}


def keep_windows(windows: list[Window], wanted: int) -> None:
    """Mark the `wanted` quietest windows kept, quiet ones first in the order they ran."""
    ranked = sorted(
        windows, key=lambda w: (w.noisy, w.cpu.other_s / w.cpu.wall_s if w.noisy else 0.0)
    )
    for window in ranked[:wanted]:
        window.kept = True


def summarize(row: Row) -> None:
    """Fill the row's figures from its windows (call after `keep_windows`)."""
    kept = row.kept
    rates = [w.mints_per_s for w in kept]
    row.mints_per_s = _median(rates)
    row.mints_per_s_min, row.mints_per_s_max = min(rates), max(rates)
    row.requests_per_s = _median([w.result.requests / w.result.duration_s for w in kept])
    row.p50_ms = _median([w.result.p50_ms for w in kept])
    row.p99_ms = _median([w.result.p99_ms for w in kept])
    row.errors = sum(w.tally.errors for w in row.windows)
    row.expected_rejects = sum(w.tally.expected_rejects for w in kept)
    mints = sum(w.tally.mints for w in kept)
    peer_cpu_s = sum(w.cpu.peer_s for w in kept)
    row.cpu_us_per_mint = peer_cpu_s / mints * 1e6 if mints else math.nan
    row.cpu_percent = _median([w.cpu.percent(w.cpu.peer_s) for w in kept])
    row.emulator_cpu_percent = _median([w.cpu.percent(w.cpu.emulator_s) for w in kept])
    row.wrk_cpu_percent = _median([w.cpu.percent(w.cpu.wrk_s) for w in kept])
    row.other_cpu_percent = _median([w.cpu.percent(w.cpu.other_s) for w in kept])
    row.noisy = any(w.noisy for w in kept)
    for window in row.windows:
        row.notes.extend(n for n in window.tally.notes if n not in row.notes)
    row.ok = True


def relate(rows: list[Row], scenarios: dict[int, Scenario]) -> None:
    """Fill each row's comparisons with Express, the ideal and the emulator direct."""
    by_key = {(r.peer, r.scenario): r for r in rows if r.ok}
    for row in rows:
        if not row.ok:
            continue
        express = by_key.get(("express", row.scenario))
        if express and express.mints_per_s > 0:
            row.vs_express = row.mints_per_s / express.mints_per_s
        ideal = scenarios[row.scenario].ideal
        if ideal:
            row.vs_ideal = row.mints_per_s / ideal
        direct = by_key.get(("emulator", row.scenario))
        if scenarios[row.scenario].connections == 1 and direct:
            row.added_p50_ms = row.p50_ms - direct.p50_ms
            row.added_p99_ms = row.p99_ms - direct.p99_ms
