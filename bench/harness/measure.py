"""One scenario: start the emulator and every peer, measure them in interleaved rounds, stop.

Peers are measured in turn (a, b, c, d, ..., then again), so a machine that
gets busier or quieter during the run touches every peer alike and the ratios
between rows hold; a window that other processes disturbed is replaced by an
extra one when retries allow.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass

from .peers import PeerPlan, base_env, emulator_command, emulator_probe, plan_peer
from .processes import Proc, StartError, free_port, wait_ready
from .results import Row, Window, keep_windows, summarize, tally
from .sampling import CpuMeter, RssSampler, tree_rss_kib, wait_for_idle, wait_for_quiet
from .settings import HOST, LOG_DIR, RunSettings, Scenario
from .wrk import WrkError, run_wrk


class UpstreamUnavailable(RuntimeError):
    """The emulator did not start: no row can run."""


@dataclass
class _Running:
    """A started peer, its row, and how wrk drives it."""

    row: Row
    plan: PeerPlan
    proc: Proc
    url: str
    wrk_env: dict[str, str]
    emulator_pid: int | None  # None when the emulator is the peer

    def wants_window(self, settings: RunSettings) -> bool:
        """Still short of quiet windows, and with attempts left."""
        quiet = sum(not w.noisy for w in self.row.windows)
        return (
            not self.row.failure
            and quiet < settings.windows
            and len(self.row.windows) < settings.windows + settings.retries
        )


def _start_emulator(settings: RunSettings, scenario: Scenario) -> tuple[Proc, int, float]:
    port = free_port()
    command = emulator_command(settings, port, scenario.latency_ms)
    log = LOG_DIR / f"s{scenario.number}-emulator.log"
    proc = Proc("emulator", command, base_env(), log)
    try:
        ready_s = wait_ready(proc, port, emulator_probe(), settings.ready_timeout_s)
    except StartError as exc:
        proc.stop()
        raise UpstreamUnavailable(f"python -m service emulator did not start: {exc}") from exc
    return proc, port, ready_s


def _start_peer(
    row: Row,
    settings: RunSettings,
    emulator: tuple[Proc, int, float],
) -> _Running | None:
    """Start the row's peer and read its ready time and idle RSS; None (row failed) if not."""
    emulator_proc, upstream_port, emulator_ready_s = emulator
    port = upstream_port if row.peer == "emulator" else free_port()
    plan = plan_peer(row.peer, settings, port, upstream_port)
    if plan.command is None:
        proc, ready_s = emulator_proc, emulator_ready_s
    else:
        proc = Proc(row.peer, plan.command, plan.env, LOG_DIR / f"s{row.scenario}-{row.peer}.log")
        try:
            ready_s = wait_ready(proc, port, plan.probe, settings.ready_timeout_s)
        except (StartError, OSError) as exc:
            proc.stop()
            row.failure = f"failed to start: {exc}"
            return None
    row.ready_ms = ready_s * 1000.0
    time.sleep(0.5)  # let start-up allocations settle before the idle reading
    row.idle_rss_mib = tree_rss_kib(proc.pid) / 1024.0
    wrk_env = {
        **plan.wrk_env,
        "BENCH_REJECT_STATUS": str(settings.reject_status),
        "BENCH_REJECT_CODE": settings.reject_code,
    }
    emulator_pid = None if proc is emulator_proc else emulator_proc.pid
    return _Running(row, plan, proc, f"http://{HOST}:{port}{plan.url_path}", wrk_env, emulator_pid)


def _settle(peer: _Running) -> None:
    waited = wait_for_idle(peer.proc.pid)
    if waited > 2.0:
        print(f"  {peer.row.peer}: {waited:.0f} s to work off its backlog", file=sys.stderr)


def _warm_up(peer: _Running, scenario: Scenario, settings: RunSettings) -> None:
    """Unmeasured load, so JITs, pools and caches are warm; then let the peer go idle."""
    try:
        run_wrk(
            peer.plan.script, peer.url, scenario, settings.warmup_s, settings.timeout, peer.wrk_env
        )
    except (WrkError, OSError, subprocess.TimeoutExpired) as exc:
        peer.row.failure = f"warm-up: {type(exc).__name__}: {exc}"
    _settle(peer)


def _window(peer: _Running, scenario: Scenario, settings: RunSettings) -> None:
    """One measured window on a calm machine (if it gets calm); then let the peer go idle."""
    plan, row = peer.plan, peer.row
    wait_for_quiet(settings.noisy_percent, settings.quiet_wait_s)
    try:
        with CpuMeter(peer.proc.pid, peer.emulator_pid) as meter:
            result = run_wrk(
                plan.script, peer.url, scenario, settings.window_s, settings.timeout, peer.wrk_env
            )
    except (WrkError, OSError, subprocess.TimeoutExpired) as exc:
        row.failure = f"{type(exc).__name__}: {exc}"
    else:
        cpu = meter.use
        noisy = cpu.percent(cpu.other_s) > settings.noisy_percent
        row.windows.append(Window(result, tally(result, plan.mixed), cpu, noisy))
    _settle(peer)


def _progress(scenario: Scenario, row: Row) -> None:
    if row.failure:
        text = (row.failure.splitlines() or ["failed"])[0]
    else:
        window = row.windows[-1]
        other = window.cpu.percent(window.cpu.other_s)
        text = (
            f"window {len(row.windows)}: {window.mints_per_s:,.0f} mints/s,"
            f" p50 {window.result.p50_ms:.2f} ms, {window.tally.errors} errors"
            + (f" (noisy: others used {other:.0f} % of a core)" if window.noisy else "")
        )
    print(f"[{scenario.label}] {row.peer}: {text}", file=sys.stderr, flush=True)


def measure_scenario(peers: list[str], scenario: Scenario, settings: RunSettings) -> list[Row]:
    """One row per peer under `scenario`; a peer's failure is recorded in its row.

    Raises UpstreamUnavailable when the emulator itself cannot start.
    """
    rows = [Row(p, scenario.number, scenario.connections, scenario.latency_ms) for p in peers]
    # Other sessions on a shared box come and go: start on a calm machine if it gets calm.
    wait_for_quiet(settings.noisy_percent, settings.quiet_wait_s)
    emulator = _start_emulator(settings, scenario)
    running: list[_Running] = []
    try:
        for row in rows:
            if (started := _start_peer(row, settings, emulator)) is not None:
                running.append(started)
        with contextlib.ExitStack() as samplers:
            peaks = {id(p): samplers.enter_context(RssSampler(p.proc.pid)) for p in running}
            if settings.warmup_s > 0:
                for peer in running:
                    _warm_up(peer, scenario, settings)
            for _ in range(settings.windows + settings.retries):
                for peer in [p for p in running if p.wants_window(settings)]:
                    _window(peer, scenario, settings)
                    _progress(scenario, peer.row)
        for peer in running:
            peer.row.peak_rss_mib = peaks[id(peer)].peak_kib / 1024.0
            if not peer.proc.alive():
                peer.row.failure = f"exited during the run (code {peer.proc.popen.returncode})"
            if not peer.row.failure and peer.row.windows:
                keep_windows(peer.row.windows, settings.windows)
                summarize(peer.row)
    finally:
        for peer in running:
            if peer.proc is not emulator[0]:
                peer.proc.stop()
        emulator[0].stop()
    return rows
