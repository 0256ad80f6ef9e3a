"""One scenario: start the emulator and every peer, measure them in interleaved rounds, stop.

Peers are measured in turn (a, b, c, d, ..., then again), so a machine that
gets busier or quieter during the run touches every peer alike and the ratios
between rows hold; a window that other processes disturbed is replaced by an
extra one when retries allow, and a peer stopped from outside is restarted.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass

from .peers import PeerPlan, base_env, emulator_command, emulator_probe, plan_peer
from .processes import Server, StartError, free_port
from .results import Row, Window, keep_windows, summarize, tally
from .sampling import CpuMeter, RssSampler, tree_rss_kib, wait_for_idle, wait_for_quiet
from .settings import HOST, LOG_DIR, RunSettings, Scenario
from .wrk import WrkError, run_wrk

MAX_RESTARTS = 2  # windows per row a peer may lose to being stopped from outside
SETTLE_S = 5.0  # longest wait for a peer to go idle after a window before restarting it


class UpstreamUnavailable(RuntimeError):
    """The emulator did not start: no row can run."""


@dataclass
class _Running:
    """A started peer, its row, and how wrk drives it."""

    row: Row
    plan: PeerPlan
    server: Server  # the emulator's Server when the emulator is the peer
    emulator: Server
    url: str
    wrk_env: dict[str, str]
    attempts: int = 0
    lost: int = 0  # windows lost because a process was stopped from outside
    backlog_restarts: int = 0

    @property
    def servers(self) -> list[Server]:
        """The processes this row needs running."""
        return [self.emulator] if self.server is self.emulator else [self.emulator, self.server]

    def wants_window(self, settings: RunSettings) -> bool:
        """Still short of quiet windows, and with attempts left."""
        quiet = sum(not w.noisy for w in self.row.windows)
        budget = settings.windows + settings.retries + self.lost
        return (
            not self.row.failure
            and quiet < settings.windows
            and self.attempts < budget
            and self.lost <= MAX_RESTARTS
        )


def _start_emulator(settings: RunSettings, scenario: Scenario) -> tuple[Server, float]:
    port = free_port()
    command = emulator_command(settings, port, scenario.latency_ms)
    log = LOG_DIR / f"s{scenario.number}-emulator.log"
    server = Server("emulator", command, base_env(), port, emulator_probe(), log)
    try:
        return server, server.start(settings.ready_timeout_s)
    except StartError as exc:
        raise UpstreamUnavailable(f"python -m service emulator did not start: {exc}") from exc


def _start_peer(
    row: Row, settings: RunSettings, emulator: Server, emulator_ready_s: float
) -> _Running | None:
    """Start the row's peer and read its ready time and idle RSS; None (row failed) if not."""
    port = emulator.port if row.peer == "emulator" else free_port()
    plan = plan_peer(row.peer, settings, port, emulator.port)
    if plan.command is None:
        server, ready_s = emulator, emulator_ready_s
    else:
        log = LOG_DIR / f"s{row.scenario}-{row.peer}.log"
        server = Server(row.peer, plan.command, plan.env, port, plan.probe, log)
        try:
            ready_s = server.start(settings.ready_timeout_s)
        except (StartError, OSError) as exc:
            row.failure = f"failed to start: {exc}"
            return None
    row.ready_ms = ready_s * 1000.0
    time.sleep(0.5)  # let start-up allocations settle before the idle reading
    row.idle_rss_mib = tree_rss_kib(server.proc.pid) / 1024.0
    wrk_env = {
        **plan.wrk_env,
        "BENCH_REJECT_STATUS": str(settings.reject_status),
        "BENCH_REJECT_CODE": settings.reject_code,
    }
    url = f"http://{HOST}:{port}{plan.url_path}"
    return _Running(row, plan, server, emulator, url, wrk_env)


def _revive(peer: _Running, scenario: Scenario, settings: RunSettings) -> bool:
    """Restart whatever the row needs that was stopped from outside; False if that fails.

    A restarted peer is warmed up again, so a window never measures a cold process.
    """
    restarted = False
    for server in peer.servers:
        try:
            note = server.revive(settings.ready_timeout_s)
        except StartError as exc:
            peer.row.failure = f"{server.name} was stopped and did not start again: {exc}"
            return False
        if note:
            restarted = True
            peer.row.notes.append(note)
            print(f"  {peer.row.peer}: {note}", file=sys.stderr, flush=True)
    if restarted and settings.warmup_s > 0:
        _unmeasured_load(peer, scenario, settings)
        _settle(peer, settings)
    return True


def _settle(peer: _Running, settings: RunSettings) -> None:
    """Let the peer go idle before the next window; restart it if its backlog is long.

    A peer that fell far behind (naive FastAPI at 400 connections) would spend
    20 s and more answering requests wrk has already given up on. Nobody waits
    for those answers, so a restart (not warmed up: that would queue a new
    backlog) is the quicker way back to an idle peer.
    """
    if not peer.server.proc.alive():
        return
    if wait_for_idle(peer.server.proc.pid, SETTLE_S) < SETTLE_S:
        return
    try:
        peer.server.restart(settings.ready_timeout_s)
    except StartError as exc:
        peer.row.failure = f"restarted to drop its backlog, it did not start again: {exc}"
        return
    peer.backlog_restarts += 1
    print(f"  {peer.row.peer}: restarted to drop its backlog", file=sys.stderr, flush=True)


def _unmeasured_load(peer: _Running, scenario: Scenario, settings: RunSettings) -> None:
    """Warm-up load, so JITs, pools and caches are warm before a window."""
    with contextlib.suppress(WrkError, OSError, subprocess.TimeoutExpired):
        # A failing peer fails its measured windows too, with the reason in its row.
        run_wrk(
            peer.plan.script, peer.url, scenario, settings.warmup_s, settings.timeout, peer.wrk_env
        )


def _warm_up(peer: _Running, scenario: Scenario, settings: RunSettings) -> None:
    """Warm the peer up, then let it go idle."""
    if _revive(peer, scenario, settings):
        _unmeasured_load(peer, scenario, settings)
        _settle(peer, settings)


def _window(peer: _Running, scenario: Scenario, settings: RunSettings) -> None:
    """One measured window on a calm machine (if it gets calm); then let the peer go idle."""
    plan, row = peer.plan, peer.row
    if not _revive(peer, scenario, settings):
        return
    wait_for_quiet(settings.noisy_percent, settings.quiet_wait_s)
    peer.attempts += 1
    emulator_pid = None if peer.server is peer.emulator else peer.emulator.proc.pid
    try:
        with CpuMeter(peer.server.proc.pid, emulator_pid) as meter:
            result = run_wrk(
                plan.script, peer.url, scenario, settings.window_s, settings.timeout, peer.wrk_env
            )
    except (WrkError, OSError, subprocess.TimeoutExpired) as exc:
        if all(server.proc.alive() for server in peer.servers):
            row.failure = f"{type(exc).__name__}: {exc}"
        else:
            peer.lost += 1  # stopped from outside: the next attempt restarts it
    else:
        if all(server.proc.alive() for server in peer.servers):
            cpu = meter.use
            noisy = cpu.percent(cpu.other_s) > settings.noisy_percent
            row.windows.append(Window(result, tally(result, plan.mixed), cpu, noisy))
        else:
            peer.lost += 1
    _settle(peer, settings)


def _progress(scenario: Scenario, row: Row) -> None:
    if row.failure:
        text = (row.failure.splitlines() or ["failed"])[0]
    elif not row.windows:
        text = "window lost (a process was stopped from outside)"
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
    emulator, emulator_ready_s = _start_emulator(settings, scenario)
    running: list[_Running] = []
    try:
        for row in rows:
            if (started := _start_peer(row, settings, emulator, emulator_ready_s)) is not None:
                running.append(started)
        with contextlib.ExitStack() as stack:
            peaks = {id(p): stack.enter_context(RssSampler(p.server.current_pid)) for p in running}
            if settings.warmup_s > 0:
                for peer in running:
                    _warm_up(peer, scenario, settings)
            for _ in range(settings.windows + settings.retries + MAX_RESTARTS):
                for peer in [p for p in running if p.wants_window(settings)]:
                    _window(peer, scenario, settings)
                    _progress(scenario, peer.row)
        for peer in running:
            peer.row.peak_rss_mib = peaks[id(peer)].peak_kib / 1024.0
            if peer.backlog_restarts:
                peer.row.notes.append(
                    f"restarted {peer.backlog_restarts} time(s) to drop a backlog of requests"
                    f" wrk had given up on (still busy {SETTLE_S:g} s after a window)"
                )
            if not peer.row.failure and peer.row.windows:
                keep_windows(peer.row.windows, settings.windows)
                summarize(peer.row)
            elif not peer.row.failure:
                peer.row.failure = "every window was lost: its processes kept being stopped"
    finally:
        for peer in running:
            if peer.server is not emulator:
                peer.server.stop()
        emulator.stop()
    return rows
