"""Benchmark harness for realtime-token-proxy.

Runs wrk against four peers, one process each, all pointed at the same
upstream emulator (restarted per scenario with that scenario's latency):

  (a) emulator      the upstream emulator hit directly: the ceiling.
  (b) express       bench/express: openai-realtime-console's GET /token route.
  (c) naive         bench/naive_fastapi.py: FastAPI + a new httpx.AsyncClient per request.
  (d) service       python -m service, minimal GA body (same work as the others).
      service-mixed python -m service, bench/wrk/service_mixed.lua: GA + beta bodies
                    that exercise translation, plus intended policy rejections (403).

Scenarios: 1) 50 connections, upstream answers at once; 2) 400 connections,
200 ms upstream latency (ideal = connections / latency); 3) 1 connection, to
measure the latency each peer adds over (a).

Results go to stdout and bench/results/latest.md (+ latest.json).  Usage:

    uv run python bench/run.py [--duration 10] [--peers emulator,express,...] [--scenarios 1,2,3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"

HOST = "127.0.0.1"
# Fake credentials: the emulator accepts any Bearer token, nothing leaves 127.0.0.1.
OPENAI_API_KEY = "fake-bench-key-the-emulator-accepts-any"
BENCH_CLIENT_KEY = "bench-client-key-0000000000000000"
MINIMAL_BODY = (
    b'{"session":{"type":"realtime","model":"gpt-realtime-2","audio":{"output":{"voice":"marin"}}}}'
)
GA_PATH = "/v1/realtime/client_secrets"
NOISY_BACKGROUND_CPU = 20.0  # % of one core used by unrelated processes during a row

PEER_ORDER = ("emulator", "express", "naive", "service", "service-mixed")
PEER_LABELS = {
    "emulator": "(a) emulator direct",
    "express": "(b) Express /token",
    "naive": "(c) naive FastAPI",
    "service": "(d) service",
    "service-mixed": "(d) service, mixed",
}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    connections: int
    threads: int
    latency_ms: float

    @property
    def ideal(self) -> float | None:
        """Mints/s a perfect proxy reaches when the upstream latency dominates."""
        if self.latency_ms <= 0:
            return None
        return self.connections / (self.latency_ms / 1000.0)


@dataclass
class Row:
    peer: str
    scenario: int
    connections: int
    latency_ms: float
    ok: bool = False
    failure: str = ""
    mints_per_s: float = 0.0
    requests_per_s: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    errors: int = 0
    expected_rejects: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    issued: dict[str, int] = field(default_factory=dict)
    minted: int = 0
    requests: int = 0
    duration_s: float = 0.0
    peak_rss_mib: float = math.nan
    idle_rss_mib: float = math.nan
    ready_ms: float = math.nan
    cpu_percent: float = math.nan
    emulator_cpu_percent: float = math.nan
    wrk_cpu_percent: float = math.nan
    background_cpu_percent: float = math.nan
    vs_express: float = math.nan
    vs_ideal: float = math.nan
    added_p50_ms: float = math.nan
    added_p99_ms: float = math.nan
    notes: list[str] = field(default_factory=list)


class StartError(RuntimeError):
    """A peer (or the emulator) did not become ready."""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Proc:
    """A child process in its own process group, logging to a file."""

    live: list[Proc] = []  # noqa: RUF012 - registry of everything we must clean up

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.started = time.monotonic()
        try:
            self.popen = subprocess.Popen(
                cmd,
                cwd=REPO_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            self._log.close()
            raise
        Proc.live.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace_s: float = 5.0) -> None:
        try:
            if self.alive():
                self._signal_group(signal.SIGTERM)
                try:
                    self.popen.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    self.popen.wait(timeout=grace_s)
            # Workers may outlive a parent that exited on its own.
            self._signal_group(signal.SIGKILL)
        finally:
            self._log.close()
            if self in Proc.live:
                Proc.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for proc in list(cls.live):
            proc.stop()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def http_status(
    method: str,
    port: int,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout_s: float = 2.0,
) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def wait_ready(proc: Proc, port: int, probe: Probe, timeout_s: float) -> float:
    """Poll until the probe answers 200; return seconds since the process started."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartError(
                f"{proc.name} exited with code {proc.popen.returncode} before it was ready"
                f"\n{proc.log_tail()}"
            )
        try:
            status = http_status(probe.method, port, probe.path, probe.body, probe.headers)
        except (OSError, http.client.HTTPException) as exc:
            last = type(exc).__name__
        else:
            if status == 200:
                return time.monotonic() - proc.started
            last = f"HTTP {status}"
        time.sleep(0.01)
    raise StartError(
        f"{proc.name} not ready after {timeout_s:.0f}s ({probe.method} {probe.path}: {last})"
        f"\n{proc.log_tail()}"
    )


# --------------------------------------------------------------------------- /proc sampling


def _read_status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """root and all its descendants (bounded walk via /proc/<pid>/task/*/children)."""
    seen: list[int] = []
    todo = [root]
    while todo and len(seen) < 4096:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
            except (OSError, ValueError):
                continue
    return seen


def tree_rss_kib(root: int) -> int:
    return sum(_read_status_kib(pid, "VmRSS") for pid in process_tree(root))


def tree_hwm_kib(root: int) -> int:
    return sum(_read_status_kib(pid, "VmHWM") for pid in process_tree(root))


def tree_cpu_s(root: int) -> float:
    """utime + stime of the live tree, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / ticks


def system_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat, first line)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (wrk, once subprocess.run returns)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class RssSampler:
    """Samples the summed VmRSS of a process tree every 100 ms in a thread."""

    def __init__(self, root: int, interval_s: float = 0.1) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.root))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        # VmHWM is the kernel's exact per-process peak: never report less.
        self.peak_kib = max(self.peak_kib, tree_rss_kib(self.root), tree_hwm_kib(self.root))


# --------------------------------------------------------------------------- wrk


def run_wrk(
    script: Path,
    url: str,
    scenario: Scenario,
    seconds: float,
    timeout: str,
    env_extra: dict[str, str],
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk not found (bench/run.sh installs it with apt-get)")
    cmd = [
        wrk,
        "-t",
        str(scenario.threads),
        "-c",
        str(scenario.connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        timeout,
        "-s",
        str(script),
        url,
    ]
    env = {**os.environ, **env_extra}
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            parsed: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return parsed
    tail = f"{proc.stdout[-800:]}{proc.stderr[-800:]}"
    raise RuntimeError(f"wrk exited {proc.returncode} without BENCH_JSON:\n{tail}")


def summarize(row: Row, data: dict[str, Any], mixed: bool) -> None:
    duration_s = float(data["duration_us"]) / 1e6 or 1.0
    statuses = {str(k): int(v) for k, v in data["statuses"].items()}
    socket_errors = {k: int(data["errors"][k]) for k in ("connect", "read", "write", "timeout")}
    issued = {str(k): int(v) for k, v in data.get("issued", {}).items()}
    minted = int(data["minted"])
    policy_rejected = int(data.get("policy_rejected", 0))
    n2xx = sum(n for code, n in statuses.items() if code.startswith("2"))
    non2xx = sum(statuses.values()) - n2xx

    if mixed:
        # wrk cannot tie a response to its request, so compare totals: at most
        # `issued.reject` policy rejections are intended, and at most
        # `issued.ok` 2xx can be genuine mints (more would mean a request that
        # should have been refused was minted).
        expected = min(policy_rejected, issued.get("reject", 0))
        good = min(minted, issued.get("ok", 0))
    else:
        expected = 0
        good = minted

    row.duration_s = duration_s
    row.statuses = statuses
    row.socket_errors = socket_errors
    row.issued = issued
    row.minted = good
    row.requests = int(data["requests"])
    row.mints_per_s = good / duration_s
    row.requests_per_s = row.requests / duration_s
    row.errors = (n2xx - good) + (non2xx - expected) + sum(socket_errors.values())
    row.expected_rejects = expected
    row.ok = True
    if row.requests and float(data["latency_us"]["max"]) > 0:
        row.p50_ms = float(data["latency_us"]["p50"]) / 1000.0
        row.p99_ms = float(data["latency_us"]["p99"]) / 1000.0
    elif row.requests:
        row.notes.append(
            "every response came after wrk's --timeout, so wrk recorded no latency"
            " (they count as timeouts)"
        )
    else:
        row.notes.append(
            "no response completed in the measured window (requests still in flight when wrk"
            " stops are counted neither as answers nor as errors)"
        )
    if n2xx > minted:
        row.notes.append(f"{n2xx - minted} 2xx answers carried no client secret")
    if mixed and minted > issued.get("ok", 0):
        row.notes.append("more mints than allowed requests: a policy rejection was minted")
    if mixed and policy_rejected > issued.get("reject", 0):
        row.notes.append(
            f"{policy_rejected - issued.get('reject', 0)} policy rejections of requests the"
            " default bench policy should allow"
        )


# --------------------------------------------------------------------------- peers


@dataclass
class Settings:
    duration: float
    warmup: float
    timeout: str
    ready_timeout: float
    emulator: str  # "service" or "standin"
    reject_voice: str
    reject_status: int
    reject_code: str
    service_env: dict[str, str]
    python: str
    started_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )


INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def base_env() -> dict[str, str]:
    """A clean environment: nothing of the developer's (keys, proxies, RATE_LIMIT_*,
    REDIS_URL, POLICY_*, ...) leaks into a peer; each peer gets only what is set here."""
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_env(settings: Settings) -> dict[str, str]:
    """What the service peer gets on top of PORT, OPENAI_BASE_URL and OPENAI_API_KEY."""
    digest = hashlib.sha256(BENCH_CLIENT_KEY.encode()).hexdigest()
    return {
        "HOST": HOST,
        "AUTH_MODE": "api_key",
        "AUTH_API_KEYS": f"bench:{digest}",
        "LOG_FORMAT": "json",
        "METRICS_ENABLED": "true",
        "WORKERS": "1",
        # The mixed script sends client-defined tools; the default policy
        # (tools set by the server) would refuse them with 403.
        "POLICY_TOOLS_MODE": "client",
        **settings.service_env,
    }


def emulator_cmd(settings: Settings, port: int, latency_ms: float) -> list[str]:
    latency = f"{latency_ms:g}"
    if settings.emulator == "service":
        return [
            settings.python,
            "-m",
            "service",
            "emulator",
            "--host",
            HOST,
            "--port",
            str(port),
            "--latency-ms",
            latency,
        ]
    return [
        settings.python,
        str(BENCH_DIR / "_standin_emulator.py"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--latency-ms",
        latency,
    ]


def emulator_probe() -> Probe:
    return Probe(
        "POST",
        GA_PATH,
        MINIMAL_BODY,
        {"Authorization": f"Bearer {OPENAI_API_KEY}", "Content-Type": "application/json"},
    )


def start_emulator(settings: Settings, scenario: Scenario, tag: str) -> tuple[Proc, int, float]:
    port = free_port()
    proc = Proc(
        f"emulator[{settings.emulator}]",
        emulator_cmd(settings, port, scenario.latency_ms),
        base_env(),
        LOG_DIR / f"{tag}-emulator.log",
    )
    ready_s = wait_ready(proc, port, emulator_probe(), settings.ready_timeout)
    return proc, port, ready_s


@dataclass(frozen=True)
class PeerPlan:
    cmd: list[str]
    env: dict[str, str]
    probe: Probe
    script: Path
    url_path: str
    wrk_env: dict[str, str]
    mixed: bool


def plan_peer(peer: str, settings: Settings, port: int, upstream_port: int) -> PeerPlan:
    upstream = f"http://{HOST}:{upstream_port}/v1"
    env = base_env()
    env.update({"PORT": str(port), "OPENAI_BASE_URL": upstream, "OPENAI_API_KEY": OPENAI_API_KEY})
    minimal = WRK_DIR / "post_minimal.lua"
    if peer == "express":
        return PeerPlan(
            cmd=["node", str(BENCH_DIR / "express" / "server.js")],
            env=env,
            probe=Probe("GET", "/token"),
            script=WRK_DIR / "get_token.lua",
            url_path="/token",
            wrk_env={},
            mixed=False,
        )
    if peer == "naive":
        return PeerPlan(
            cmd=[
                settings.python,
                "-m",
                "uvicorn",
                "naive_fastapi:app",
                "--app-dir",
                str(BENCH_DIR),
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            probe=Probe("POST", GA_PATH, MINIMAL_BODY, {"Content-Type": "application/json"}),
            script=minimal,
            url_path=GA_PATH,
            wrk_env={},
            mixed=False,
        )
    if peer in ("service", "service-mixed"):
        env.update(service_env(settings))
        mixed = peer == "service-mixed"
        return PeerPlan(
            cmd=[settings.python, "-m", "service"],
            env=env,
            probe=Probe("GET", "/readyz"),
            script=WRK_DIR / ("service_mixed.lua" if mixed else "post_minimal.lua"),
            url_path="" if mixed else GA_PATH,
            wrk_env={
                "BENCH_API_KEY": BENCH_CLIENT_KEY,
                "BENCH_REJECT_VOICE": settings.reject_voice,
            },
            mixed=mixed,
        )
    raise ValueError(f"unknown peer {peer!r}")


def run_one(peer: str, scenario: Scenario, settings: Settings) -> Row:
    row = Row(
        peer=peer,
        scenario=scenario.number,
        connections=scenario.connections,
        latency_ms=scenario.latency_ms,
    )
    tag = f"s{scenario.number}-{peer}"
    procs: list[Proc] = []
    try:
        try:
            emulator, upstream_port, emu_ready = start_emulator(settings, scenario, tag)
        except StartError as exc:
            row.failure = f"emulator failed to start: {exc}"
            return row
        procs.append(emulator)
        if peer == "emulator":
            target, port, ready_s = emulator, upstream_port, emu_ready
            script, url_path, wrk_env, mixed = (
                WRK_DIR / "post_minimal.lua",
                GA_PATH,
                {"BENCH_API_KEY": OPENAI_API_KEY},
                False,
            )
        else:
            port = free_port()
            plan = plan_peer(peer, settings, port, upstream_port)
            target = Proc(peer, plan.cmd, plan.env, LOG_DIR / f"{tag}.log")
            procs.append(target)
            try:
                ready_s = wait_ready(target, port, plan.probe, settings.ready_timeout)
            except StartError as exc:
                row.failure = f"failed to start: {exc}"
                return row
            script, url_path, wrk_env, mixed = plan.script, plan.url_path, plan.wrk_env, plan.mixed
        row.ready_ms = ready_s * 1000.0
        time.sleep(0.5)  # let start-up allocations settle before the idle reading
        row.idle_rss_mib = tree_rss_kib(target.pid) / 1024.0
        url = f"http://{HOST}:{port}{url_path}"
        wrk_env = {
            **wrk_env,
            "BENCH_REJECT_STATUS": str(settings.reject_status),
            "BENCH_REJECT_CODE": settings.reject_code,
        }
        with RssSampler(target.pid) as sampler:
            if settings.warmup > 0:
                run_wrk(script, url, scenario, settings.warmup, settings.timeout, wrk_env)
            cpu_before, emu_before = tree_cpu_s(target.pid), tree_cpu_s(emulator.pid)
            wrk_before, busy_before = children_cpu_s(), system_busy_s()
            wall_before = time.monotonic()
            data = run_wrk(script, url, scenario, settings.duration, settings.timeout, wrk_env)
            wall = max(time.monotonic() - wall_before, 1e-9)
            peer_s = tree_cpu_s(target.pid) - cpu_before
            emu_s = tree_cpu_s(emulator.pid) - emu_before if target is not emulator else 0.0
            wrk_s = children_cpu_s() - wrk_before
            busy_s = system_busy_s() - busy_before
            row.cpu_percent = 100.0 * peer_s / wall
            row.emulator_cpu_percent = 100.0 * (emu_s if target is not emulator else peer_s) / wall
            row.wrk_cpu_percent = 100.0 * wrk_s / wall
            # Whatever else ran on the machine meanwhile: a noise indicator.
            row.background_cpu_percent = max(0.0, 100.0 * (busy_s - peer_s - emu_s - wrk_s) / wall)
        row.peak_rss_mib = sampler.peak_kib / 1024.0
        summarize(row, data, mixed)
        if not target.alive():
            row.notes.append(f"process exited during the run (code {target.popen.returncode})")
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
        row.ok = False
        row.failure = f"{type(exc).__name__}: {exc}"
    finally:
        for proc in reversed(procs):
            proc.stop()
    return row


def service_emulator_available(python: str) -> tuple[bool, str]:
    if not (REPO_DIR / "service" / "__main__.py").exists():
        return False, "service/__main__.py does not exist yet"
    proc = Proc(
        "emulator-probe",
        [python, "-m", "service", "emulator", "--help"],
        base_env(),
        LOG_DIR / "emulator-help.log",
    )
    try:
        code = proc.popen.wait(timeout=20)
    except subprocess.TimeoutExpired:
        return False, "`python -m service emulator --help` did not exit within 20 s"
    finally:
        proc.stop()
    if code != 0:
        return False, f"`python -m service emulator --help` exited {code}: {proc.log_tail(3)}"
    return True, "python -m service emulator"


# --------------------------------------------------------------------------- report


def fmt(value: float, digits: int = 1, suffix: str = "") -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def command_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unavailable"


def machine_description(settings: Settings) -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = _read_meminfo_total()
    express_version = "not installed"
    with contextlib.suppress(OSError, ValueError, KeyError):
        pkg = json.loads((BENCH_DIR / "express/node_modules/express/package.json").read_text())
        express_version = str(pkg["version"])
    py_versions = command_version(
        [
            settings.python,
            "-c",
            (
                "import sys, fastapi, uvicorn, httpx; "
                "print(sys.version.split()[0], 'fastapi', fastapi.__version__, "
                "'uvicorn', uvicorn.__version__, 'httpx', httpx.__version__)"
            ),
        ]
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return [
        f"- date: {settings.started_at}",
        f"- host: {platform.node()}; nproc {os.cpu_count()}; CPU {cpu}; RAM {mem}",
        f"- kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- python: {py_versions}",
        f"- node: {command_version(['node', '--version'])}; express {express_version}",
        f"- wrk: {command_version(['wrk', '--version']).split(' Copyright')[0]}",
        f"- ulimit -n: {soft} (hard {hard})",
    ]


def _read_meminfo_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def compare(rows: list[Row], scenarios: dict[int, Scenario]) -> None:
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
        limit = by_key.get(("emulator", row.scenario))
        if row.scenario == 3 and limit:
            row.added_p50_ms = row.p50_ms - limit.p50_ms
            row.added_p99_ms = row.p99_ms - limit.p99_ms


def render(
    rows: list[Row],
    scenarios: dict[int, Scenario],
    settings: Settings,
    emulator_note: str,
    argv: list[str],
) -> str:
    out: list[str] = ["# realtime-token-proxy benchmark", ""]
    out += machine_description(settings)
    out += [
        f"- upstream emulator: {emulator_note}",
        f"- wrk: {settings.duration:g} s measured after {settings.warmup:g} s warm-up per row,"
        f" --timeout {settings.timeout}; one fresh emulator + peer process per row",
        f"- command: `{shlex.join(['bench/run.py', *argv])}`",
        "- service env: "
        + " ".join(f"{k}={v}" for k, v in service_env(settings).items() if k != "AUTH_API_KEYS")
        + " AUTH_API_KEYS=bench:<sha256 of the bench key>, OPENAI_API_KEY=<fake>",
    ]
    if (REPO_DIR / ".env").exists():
        out.append(
            "- **note:** a `.env` exists in the repository root; the service reads it too"
            " (process environment wins), so its settings may differ from the list above"
        )
    out += ["", "Scenarios:"]
    for sc in scenarios.values():
        ideal = f", ideal {sc.ideal:,.0f} mints/s" if sc.ideal else ""
        out.append(
            f"{sc.number}. {sc.title}: {sc.connections} connections, {sc.threads} wrk "
            f"thread(s), upstream latency {sc.latency_ms:g} ms{ideal}"
        )
    out += [
        "",
        "| peer | sc | conns | upstream ms | mints/s | p50 ms | p99 ms | errors | 403 expected"
        " | vs Express | vs ideal | +p50 ms vs (a) | +p99 ms vs (a) | peak RSS MiB"
        " | idle RSS MiB | ready ms | peer CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        label = PEER_LABELS.get(row.peer, row.peer)
        head = f"| {label} | {row.scenario} | {row.connections} | {row.latency_ms:g} "
        if not row.ok:
            reason = row.failure.splitlines()[0] if row.failure else "failed"
            out.append(head + f"| **{reason.replace('|', '/')}** " + "| — " * 12 + "|")
            continue
        out.append(
            head + f"| {fmt(row.mints_per_s, 0)} | {fmt(row.p50_ms, 2)} | {fmt(row.p99_ms, 2)} "
            f"| {row.errors:,} | {row.expected_rejects:,} "
            f"| {fmt(row.vs_express, 2, 'x')} | {fmt(row.vs_ideal, 2, 'x')} "
            f"| {fmt(row.added_p50_ms, 2)} | {fmt(row.added_p99_ms, 2)} "
            f"| {fmt(row.peak_rss_mib, 1)} | {fmt(row.idle_rss_mib, 1)} "
            f"| {fmt(row.ready_ms, 0)} | {fmt(row.cpu_percent, 0)} |"
        )
    noisy = [
        f"{PEER_LABELS.get(r.peer, r.peer)} sc{r.scenario} ({r.background_cpu_percent:.0f} %)"
        for r in rows
        if r.ok and r.background_cpu_percent > NOISY_BACKGROUND_CPU
    ]
    if noisy:
        out += [
            "",
            "**Warning:** other processes on the machine used more than"
            f" {NOISY_BACKGROUND_CPU:.0f} % of a core during: {', '.join(noisy)}."
            " Those rows are noisy; rerun on a quiet machine.",
        ]
    out += ["", "Details (HTTP statuses as counted by wrk's response() hook; socket errors):", ""]
    for row in rows:
        label = f"{PEER_LABELS.get(row.peer, row.peer)}, scenario {row.scenario}"
        if not row.ok:
            out.append(f"- {label}: FAILED — " + row.failure.replace("\n", "\n    "))
            continue
        sock = ", ".join(f"{k} {v}" for k, v in row.socket_errors.items() if v) or "none"
        issued = (
            f"; issued ok {row.issued.get('ok', 0):,} / reject {row.issued.get('reject', 0):,}"
            if row.peer == "service-mixed"
            else ""
        )
        notes = f"; {'; '.join(row.notes)}" if row.notes else ""
        out.append(
            f"- {label}: {row.requests:,} responses in {row.duration_s:.2f} s "
            f"({fmt(row.requests_per_s, 0)} req/s); statuses "
            f"{json.dumps(row.statuses, sort_keys=True)}; socket errors {sock}{issued}; "
            f"CPU % peer {fmt(row.cpu_percent, 0)}, emulator {fmt(row.emulator_cpu_percent, 0)},"
            f" wrk {fmt(row.wrk_cpu_percent, 0)},"
            f" everything else {fmt(row.background_cpu_percent, 0)}"
            f"{notes}"
        )
    out += [
        "",
        "How to read this: *mints/s* counts only 2xx answers carrying a client secret"
        ' (`"value"`). *errors* = non-2xx answers other than the intended policy rejections'
        " + 2xx answers without a secret + socket errors/timeouts. *403 expected* counts"
        " answers with the rejection status whose body names the rejection code, up to the"
        " number of rejection requests the mixed script issued (anything beyond is an error)."
        " *vs Express* compares mints/s with (b) in the same scenario; *vs ideal* is mints/s /"
        " (connections / upstream latency). *+p50/+p99 vs (a)* is the latency a peer adds over"
        " calling the emulator directly (scenario 3). *peak RSS* is the max of 100 ms VmRSS"
        " samples of the peer's process tree (and never below its VmHWM); *idle RSS* is read"
        " 0.5 s after readiness; *ready ms* is process start to the first 200 from the"
        " readiness probe (GET /readyz for the service; a real mint for the others)."
        " *peer CPU %* is the peer tree's CPU time over the measured run (100 % = one core)."
        " wrk, the emulator and the peer share the same cores, so a CPU-bound peer also"
        " competes with its load generator and upstream.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        print(f"warning: ulimit -n is {soft}; 400-connection runs may fail", file=sys.stderr)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark realtime-token-proxy against its peers with wrk."
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up seconds per row (0 disables)"
    )
    parser.add_argument(
        "--peers", default=",".join(PEER_ORDER), help=f"comma list from {','.join(PEER_ORDER)}"
    )
    parser.add_argument("--scenarios", default="1,2,3", help="comma list from 1,2,3")
    parser.add_argument(
        "--emulator",
        choices=("auto", "service", "standin"),
        default="auto",
        help="auto = python -m service emulator when it exists, else the stand-in",
    )
    parser.add_argument("--connections-1", type=int, default=50)
    parser.add_argument("--connections-2", type=int, default=400)
    parser.add_argument("--latency-ms-2", type=float, default=200.0)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (scenarios 1, 2)")
    parser.add_argument("--timeout", default="5s", help="wrk --timeout")
    parser.add_argument(
        "--ready-timeout", type=float, default=30.0, help="seconds a process gets to become ready"
    )
    parser.add_argument(
        "--reject-voice",
        default="bench-disallowed-voice",
        help="voice the service's policy must refuse (mixed script)",
    )
    parser.add_argument(
        "--reject-status",
        type=int,
        default=403,
        help="status the service answers a policy rejection with",
    )
    parser.add_argument(
        "--reject-code",
        default="policy_violation",
        help="text a policy rejection's body must contain ('' = any body)",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env for the service peer (repeatable)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "latest.md",
        help="markdown output; a .json twin is written next to it",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEER_ORDER]
    if unknown:
        print(f"unknown peer(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    numbers = sorted({int(s) for s in args.scenarios.split(",") if s.strip()})
    if not set(numbers) <= {1, 2, 3} or args.duration <= 0:
        print("scenarios must be within 1,2,3 and --duration > 0", file=sys.stderr)
        return 2
    service_env: dict[str, str] = {}
    for item in args.service_env:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--service-env wants KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        service_env[key] = value

    threads = max(1, args.threads)
    all_scenarios = {
        1: Scenario(
            1,
            "throughput, instant upstream",
            args.connections_1,
            min(threads, args.connections_1),
            0.0,
        ),
        2: Scenario(
            2,
            "slow upstream",
            args.connections_2,
            min(threads, args.connections_2),
            args.latency_ms_2,
        ),
        3: Scenario(3, "added latency, single connection", 1, 1, 0.0),
    }
    scenarios = {n: all_scenarios[n] for n in numbers}

    raise_nofile()
    signal.signal(signal.SIGTERM, _on_signal)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    python = sys.executable

    rows: list[Row] = []
    try:
        if args.emulator == "standin":
            emulator, emulator_note = "standin", "stand-in (bench/_standin_emulator.py), by request"
        else:
            available, why = service_emulator_available(python)
            if available:
                emulator, emulator_note = "service", "python -m service emulator"
            elif args.emulator == "service":
                print(f"--emulator service: unavailable ({why})", file=sys.stderr)
                return 2
            else:
                emulator = "standin"
                emulator_note = f"stand-in (bench/_standin_emulator.py) because {why}"
        print(f"upstream emulator: {emulator_note}", file=sys.stderr)
        settings = Settings(
            duration=args.duration,
            warmup=max(0.0, args.warmup),
            timeout=args.timeout,
            ready_timeout=args.ready_timeout,
            emulator=emulator,
            reject_voice=args.reject_voice,
            reject_status=args.reject_status,
            reject_code=args.reject_code,
            service_env=service_env,
            python=python,
        )
        for number, scenario in scenarios.items():
            for peer in [p for p in PEER_ORDER if p in peers]:
                print(f"[scenario {number}] {peer} ...", file=sys.stderr, flush=True)
                row = run_one(peer, scenario, settings)
                status = (
                    f"{row.mints_per_s:,.0f} mints/s, p50 {row.p50_ms:.2f} ms, "
                    f"p99 {row.p99_ms:.2f} ms, errors {row.errors}"
                    if row.ok
                    else row.failure.splitlines()[0]
                )
                print(f"[scenario {number}] {peer}: {status}", file=sys.stderr, flush=True)
                rows.append(row)
    finally:
        Proc.stop_all()

    compare(rows, scenarios)
    report = render(rows, scenarios, settings, emulator_note, argv)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            _json_safe(
                {
                    "emulator": emulator_note,
                    "argv": argv,
                    "scenarios": {n: asdict(s) for n, s in scenarios.items()},
                    "rows": [asdict(r) for r in rows],
                }
            ),
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); all benchmark processes stopped", file=sys.stderr)
        sys.exit(130)
