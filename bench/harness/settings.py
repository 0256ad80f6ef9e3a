"""What a benchmark run is: where things live, the fake credentials, the scenarios, the options."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"

HOST = "127.0.0.1"
# Fake credentials: the emulator accepts any Bearer token, and nothing leaves 127.0.0.1.
UPSTREAM_KEY = "fake-bench-key-the-emulator-accepts-any"
CLIENT_KEY = "bench-client-key-0000000000000000"
# The body openai-realtime-console's Express route hard-codes: every peer does the same work.
MINIMAL_BODY = (
    b'{"session":{"type":"realtime","model":"gpt-realtime-2","audio":{"output":{"voice":"marin"}}}}'
)
GA_PATH = "/v1/realtime/client_secrets"


@dataclass(frozen=True)
class Scenario:
    """One load shape: connections, wrk threads and the emulator's latency."""

    number: int
    title: str
    connections: int
    threads: int
    latency_ms: float

    @property
    def ideal(self) -> float | None:
        """Mints/s of a proxy that never queues, when the upstream latency dominates."""
        if self.latency_ms <= 0:
            return None
        return self.connections / (self.latency_ms / 1000.0)

    @property
    def label(self) -> str:
        """Short form for the table: `400 conns, 200 ms`."""
        conns = f"{self.connections} conn" + ("s" if self.connections != 1 else "")
        return f"{conns}, {self.latency_ms:g} ms" if self.latency_ms > 0 else conns


def build_scenarios(
    connections_1: int, connections_2: int, latency_ms_2: float, threads: int
) -> dict[int, Scenario]:
    """The three scenarios: throughput, slow upstream, added latency at one connection."""
    threads = max(1, threads)
    return {
        1: Scenario(
            1, "throughput, instant upstream", connections_1, min(threads, connections_1), 0.0
        ),
        2: Scenario(2, "slow upstream", connections_2, min(threads, connections_2), latency_ms_2),
        3: Scenario(3, "added latency, single connection", 1, 1, 0.0),
    }


def _now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class RunSettings:
    """The options every row is measured with."""

    window_s: float  # one measured wrk run
    windows: int  # measured runs per row; the row reports their median
    retries: int  # extra windows a row may run to replace noisy ones
    warmup_s: float
    timeout: str  # wrk --timeout
    ready_timeout_s: float
    quiet_wait_s: float  # how long a row waits for a busy machine to calm down
    noisy_percent: float  # other processes' CPU (% of one core) that makes a window noisy
    reject_voice: str
    reject_status: int
    reject_code: str
    service_env: dict[str, str]
    python: str
    started_at: str = field(default_factory=_now_utc)
