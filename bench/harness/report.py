"""The markdown report: set-up, the figures, the goals, resources and per-row details."""

from __future__ import annotations

import json
import math
import shlex

from .goals import MET, Goal
from .machine import describe_machine
from .peers import label, service_env
from .results import Row, Window
from .settings import REPO_DIR, RunSettings, Scenario


def fmt(value: float, digits: int = 1, suffix: str = "") -> str:
    """A number for the table, `—` when there is none."""
    if math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def _signed(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+,.2f}"


def _spread(row: Row) -> str:
    if not row.mints_per_s or math.isnan(row.mints_per_s):
        return "—"
    return f"{100.0 * (row.mints_per_s_max - row.mints_per_s_min) / row.mints_per_s:.0f} %"


def _window_tags(window: Window) -> str:
    tags = [tag for tag, on in (("noisy", window.noisy), ("dropped", not window.kept)) if on]
    return f" ({', '.join(tags)})" if tags else ""


def _setup(
    settings: RunSettings, scenarios: dict[int, Scenario], argv: list[str], elapsed_s: float
) -> list[str]:
    env = " ".join(f"{k}={v}" for k, v in service_env(settings).items() if k != "AUTH_API_KEYS")
    out = [
        "# realtime-token-proxy benchmark",
        "",
        f"- date: {settings.started_at}; the load benchmark took {elapsed_s / 60:.1f} min",
        *describe_machine(settings.python),
        "- upstream: `python -m service emulator`, one per scenario with its latency; every"
        " peer of a scenario runs as its own process against it, started once",
        f"- per scenario: each peer gets {settings.warmup_s:g} s of warm-up, then"
        f" {settings.windows} measured windows of {settings.window_s:g} s in interleaved rounds"
        " (a, b, c, d, d mixed, a, ...; medians reported). A window during which other"
        f" processes used more than {settings.noisy_percent:g} % of a core is noisy; up to"
        f" {settings.retries} extra window(s) per peer replace noisy ones. wrk --timeout"
        f" {settings.timeout}",
        f"- command: `{shlex.join(['bench/run.py', *argv])}`",
        f"- service env: {env} AUTH_API_KEYS=bench:<sha256 of the bench key>,"
        " OPENAI_API_KEY=<fake>",
    ]
    if (REPO_DIR / ".env").exists():
        out.append(
            "- **note:** a `.env` exists in the repository root; the service reads it too"
            " (process environment wins), so its settings may differ from the list above"
        )
    out += ["", "Scenarios:", ""]
    for sc in scenarios.values():
        ideal = f", ideal {sc.ideal:,.0f} mints/s" if sc.ideal else ""
        out.append(
            f"{sc.number}. {sc.title}: {sc.connections} connection(s), {sc.threads} wrk"
            f" thread(s), upstream latency {sc.latency_ms:g} ms{ideal}"
        )
    return out


def _figures(rows: list[Row], scenarios: dict[int, Scenario]) -> list[str]:
    out = [
        "| peer | scenario | mints/s | spread | p50 ms | p99 ms | errors | 403 expected"
        " | vs Express | vs ideal | added p50 / p99 ms | CPU µs/mint |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        head = f"| {label(row.peer)} | {scenarios[row.scenario].label} "
        if not row.ok:
            reason = (row.failure.splitlines() or ["failed"])[0].replace("|", "/")
            out.append(head + f"| **{reason}** " + "| — " * 9 + "|")
            continue
        added = (
            f"{_signed(row.added_p50_ms)} / {_signed(row.added_p99_ms)}"
            if math.isfinite(row.added_p50_ms)
            else ""
        )
        out.append(
            head + f"| {fmt(row.mints_per_s, 0)}{' (noisy)' if row.noisy else ''} "
            f"| {_spread(row)} | {fmt(row.p50_ms, 2)} | {fmt(row.p99_ms, 2)} "
            f"| {row.errors:,} | {row.expected_rejects:,} "
            f"| {fmt(row.vs_express, 2, 'x')} | {fmt(row.vs_ideal, 2)} | {added} "
            f"| {fmt(row.cpu_us_per_mint, 0)} |"
        )
    return out


def _goals(goals: list[Goal]) -> list[str]:
    out = ["| goal | verdict | figures |", "|---|---|---|"]
    for goal in goals:
        verdict = f"**{goal.verdict}**" if goal.verdict == MET else f"**{goal.verdict.upper()}**"
        out.append(f"| {goal.goal} | {verdict} | {goal.figures} |")
    return out


def _resources(rows: list[Row], scenarios: dict[int, Scenario]) -> list[str]:
    out = [
        "| peer | scenario | peer CPU % | emulator CPU % | wrk CPU % | other CPU %"
        " | peak RSS MiB | idle RSS MiB | ready ms | windows kept / run |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if not row.ok:
            continue
        out.append(
            f"| {label(row.peer)} | {scenarios[row.scenario].label} "
            f"| {fmt(row.cpu_percent, 0)} | {fmt(row.emulator_cpu_percent, 0)} "
            f"| {fmt(row.wrk_cpu_percent, 0)} | {fmt(row.other_cpu_percent, 0)} "
            f"| {fmt(row.peak_rss_mib, 1)} | {fmt(row.idle_rss_mib, 1)} "
            f"| {fmt(row.ready_ms, 0)} | {len(row.kept)} / {len(row.windows)} |"
        )
    return out


def _details(rows: list[Row], scenarios: dict[int, Scenario]) -> list[str]:
    out: list[str] = []
    for row in rows:
        name = f"{label(row.peer)}, {scenarios[row.scenario].label}"
        if not row.ok:
            out.append(f"- {name}: FAILED — " + row.failure.replace("\n", "\n    "))
            continue
        windows = ", ".join(f"{w.mints_per_s:,.0f}{_window_tags(w)}" for w in row.windows)
        responses = sum(w.result.requests for w in row.windows)
        seconds = sum(w.result.duration_s for w in row.windows)
        issued = ""
        if row.peer == "service-mixed":
            ok = sum(w.result.issued.get("ok", 0) for w in row.windows)
            reject = sum(w.result.issued.get("reject", 0) for w in row.windows)
            issued = f"; issued ok {ok:,} / reject {reject:,}"
        sock = ", ".join(f"{k} {v}" for k, v in row.socket_errors().items()) or "none"
        notes = f"; {'; '.join(row.notes)}" if row.notes else ""
        out.append(
            f"- {name}: mints/s per window {windows}; {responses:,} responses in"
            f" {seconds:.1f} s; statuses {json.dumps(row.statuses())}; socket errors"
            f" {sock}{issued}{notes}"
        )
    return out


_HOW_TO_READ = (
    'How to read this: *mints/s* counts 2xx answers carrying a client secret (`"value"`),'
    " median over the kept windows; *spread* is (max - min) / median over them. *errors*"
    " (over every window, kept or not) = non-2xx answers other than the intended policy"
    " rejections + 2xx without a secret + socket errors and timeouts. *403 expected*: the"
    " mixed script's intended rejections. *vs Express* divides by (b)'s mints/s in the same"
    " scenario; *vs ideal* by connections / upstream latency. *added p50 / p99* is the latency"
    " over calling the emulator directly at one connection. *CPU µs/mint* is the peer process"
    " tree's CPU time over the kept windows divided by their mints (for the mixed row it"
    " includes the rejections' work). *other CPU %* is what the rest of the machine used"
    " meanwhile (100 % = one core); a window above the noise threshold is replaced when"
    " retries allow, and a row still built on one is marked *(noisy)*. *peak RSS*: largest"
    " 100 ms sample of the peer tree's VmRSS (never below its VmHWM); *idle RSS*: 0.5 s after"
    " readiness; *ready ms*: process start to the first 200 from the readiness probe"
    " (GET /readyz for the service, a real mint for the others). wrk, the emulator and the"
    " peer share the cores: compare rows of one report, not across machines."
)


def render(
    rows: list[Row],
    goals: list[Goal],
    scenarios: dict[int, Scenario],
    settings: RunSettings,
    argv: list[str],
    elapsed_s: float,
) -> str:
    """The whole report as markdown; `elapsed_s` is how long the measuring took."""
    out = _setup(settings, scenarios, argv, elapsed_s)
    out += ["", "## Figures", "", *_figures(rows, scenarios)]
    out += ["", "## Goals", "", *_goals(goals)]
    out += ["", "## Resources", "", *_resources(rows, scenarios)]
    out += ["", "## Details", "", *_details(rows, scenarios), "", _HOW_TO_READ, ""]
    return "\n".join(out)
