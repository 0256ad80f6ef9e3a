"""Benchmark: what five flooding sidebands cost another caller's mint.

Issue #19 (item 11) measured one flooding sideband raising a dry-run mint's
p90 to 164 ms, and five raising `/healthz`'s median to 148 ms. The service
now reads at most `CALLS_SIDEBAND_MAX_EVENTS_PER_SECOND` events per call and
second (the rest dropped unparsed), yields between batches of frames, and
hangs up a call that floods for 5 seconds in a row. This measures it:

1. starts the hostile upstream (`python -m tests.hostile`, a real server
   whose sidebands misbehave on demand) and the service (one worker, no
   caller auth, the hostile server as its OpenAI, dry runs unlimited);
2. *quiet*: holds `--calls` supervised calls whose sidebands are quiet, and
   times sequential dry-run mints for `--seconds` (`POST /v1/realtime/client_secrets
   ?dry_run=true`);
3. *flood*: holds `--calls` calls whose sidebands send events as fast as the
   socket takes them, or `--flood-rate` a second (the service hangs each up after 5 s; a new one
   replaces it at once, so `--calls` flood all the time), and times the
   same mints meanwhile;
4. prints both p50/p99, the rise of p99 (goal: <= 10 ms), the frames the
   hostile side sent, the frames the service dropped, its flood hang-ups and
   its CPU during the flood phase.

The machine is shared: the hostile server's own flooding costs a core. It
measures: the exit code is 0 whether the goal is met or not (1 only if it
could not run).

`uv run python bench/hostile_sidebands.py [--calls 5] [--seconds 15] [--flood-rate 5000]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time

import httpx
from harness.peers import base_env
from harness.processes import Probe, Proc, StartError, free_port, stop_all, wait_ready
from harness.sampling import tree_cpu_s
from harness.settings import HOST, LOG_DIR

OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=bench\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)
MINT = "/v1/realtime/client_secrets?dry_run=true"
MINT_BODY = {"session": {"type": "realtime", "instructions": "Be brief."}}
MAX_P99_RISE_MS = 10.0
FLOOD_RATE = 5000
"""Ten times the default budget a call: a flood, yet one the hostile process can send
without burning a core of the shared machine itself (which the mints would feel whatever
the service did); `--flood-rate 0` for as fast as it can."""
READY_S = 30.0
UPSTREAM_KEY = "sk-hostile-upstream-accepts-any-key"


def start(name: str, command: list[str], env: dict[str, str], port: int) -> Proc:
    """Start a process logging to bench/results/logs, ready once `/healthz` answers 200."""
    proc = Proc(name, command, env, LOG_DIR / f"hostile-{name}.log")
    wait_ready(proc, port, Probe("GET", "/healthz"), READY_S)
    return proc


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))]


async def create_call(service: httpx.AsyncClient) -> str | None:
    """One supervised call through the service; its id, or None if refused."""
    response = await service.post(
        "/v1/realtime/calls", content=OFFER, headers={"Content-Type": "application/sdp"}
    )
    if response.status_code != 201:
        return None
    return response.headers["location"].rsplit("/", 1)[-1]


async def hold_calls(
    service: httpx.AsyncClient, hostile: httpx.AsyncClient, count: int, created: list[str]
) -> None:
    """Keep `count` calls open upstream: a call the service hung up is replaced at once."""
    while True:
        stats = (await hostile.get("/_hostile/stats")).json()
        for _ in range(count - stats["open"]):
            call_id = await create_call(service)
            if call_id is not None:
                created.append(call_id)
        await asyncio.sleep(0.1)


async def mints(service: httpx.AsyncClient, seconds: float) -> list[float]:
    """Sequential dry-run mints for `seconds`; each one's milliseconds."""
    samples: list[float] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await service.post(MINT, json=MINT_BODY)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"dry-run mint answered {response.status_code}: {response.text}")
    return samples


async def metric(service: httpx.AsyncClient, sample: str) -> float:
    """One sample of the service's metrics (0 when absent)."""
    for line in (await service.get("/metrics")).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def phase(
    args: argparse.Namespace, service: Proc, service_url: str, hostile_url: str, mode: str
) -> tuple[list[float], dict[str, float]]:
    """The mints' latencies while `args.calls` calls of `mode` are held, and what it cost."""
    async with (
        httpx.AsyncClient(base_url=service_url, timeout=30) as to_service,
        httpx.AsyncClient(base_url=hostile_url, timeout=30) as to_hostile,
    ):
        await to_hostile.post(f"/_hostile/mode/{mode}")
        created: list[str] = []
        holder = asyncio.create_task(hold_calls(to_service, to_hostile, args.calls, created))
        await asyncio.sleep(1.0)  # attached (and flooding)
        await mints(to_service, 0.5)  # warm-up
        dropped = await metric(to_service, 'rtp_sideband_events_dropped_total{why="budget"}')
        floods = await metric(to_service, 'rtp_calls_ended_total{how="flood"}')
        sent = (await to_hostile.get("/_hostile/stats")).json()["frames_sent"]
        cpu, wall = tree_cpu_s(service.pid), time.monotonic()
        samples = await mints(to_service, args.seconds)
        figures = {
            "service_cpu_percent": 100
            * (tree_cpu_s(service.pid) - cpu)
            / (time.monotonic() - wall),
            "seconds": time.monotonic() - wall,
        }
        figures["frames_sent"] = (await to_hostile.get("/_hostile/stats")).json()[
            "frames_sent"
        ] - sent
        figures["frames_dropped"] = (
            await metric(to_service, 'rtp_sideband_events_dropped_total{why="budget"}') - dropped
        )
        figures["flood_hangups"] = (
            await metric(to_service, 'rtp_calls_ended_total{how="flood"}') - floods
        )
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
        figures["calls_created"] = len(created)
        for call_id in created:
            await to_service.post(f"/v1/realtime/calls/{call_id}/hangup")
    return samples, figures


def main() -> int:
    """Run the benchmark; 0 whatever the verdict, 1 if a process would not start."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=15.0, help="of mints, each phase")
    parser.add_argument(
        "--flood-rate",
        type=int,
        default=FLOOD_RATE,
        help="frames a second each flooding sideband sends (0: as fast as it can)",
    )
    args = parser.parse_args()
    python = sys.executable
    try:
        hostile_port, port = free_port(), free_port()
        hostile_cmd = [python, "-m", "tests.hostile", "--port", str(hostile_port)]
        hostile_cmd += ["--flood-rate", str(args.flood_rate)]
        start("upstream", hostile_cmd, base_env(), hostile_port)
        env = {
            **base_env(),
            "HOST": HOST,
            "PORT": str(port),
            "WORKERS": "1",
            "AUTH_MODE": "none",
            "LOG_FORMAT": "json",
            "METRICS_ENABLED": "true",
            "RATE_LIMIT_DRY_RUN_PER_IDENTITY": "off",
            "OPENAI_BASE_URL": f"http://{HOST}:{hostile_port}/v1",
            "OPENAI_API_KEY": UPSTREAM_KEY,
        }
        service = start("service", [python, "-m", "service"], env, port)
        service_url, hostile_url = f"http://{HOST}:{port}", f"http://{HOST}:{hostile_port}"
        rate = f"{args.flood_rate:,} frames/s" if args.flood_rate else "unlimited"
        print(
            f"hostile sidebands: {args.calls} calls (flood {rate} each),"
            f" {args.seconds:g} s of sequential dry-run mints each phase"
        )
        quiet, calm = asyncio.run(phase(args, service, service_url, hostile_url, "normal"))
        flood, cost = asyncio.run(phase(args, service, service_url, hostile_url, "flood"))
    except StartError as error:
        print(f"hostile sidebands benchmark could not start: {error}", file=sys.stderr)
        return 1
    finally:
        stop_all()
    rows = {"quiet": quiet, "flood": flood}
    for name, samples in rows.items():
        print(
            f"  {name:>5}: mint p50 {statistics.median(samples):.1f} ms,"
            f" p99 {percentile(samples, 0.99):.1f} ms over {len(samples)}"
        )
    print(f"  quiet phase: service CPU {calm['service_cpu_percent']:.0f} % of a core")
    rise = percentile(flood, 0.99) - percentile(quiet, 0.99)
    verdict = "met" if rise <= MAX_P99_RISE_MS else "NOT met"
    print(
        f"  p99 rise with {args.calls} flooding sidebands: {rise:+.1f} ms"
        f" (goal <= {MAX_P99_RISE_MS:g} ms: {verdict})"
    )
    print(
        f"  flood phase ({cost['seconds']:.1f} s): hostile sent {cost['frames_sent']:,.0f} frames,"
        f" service dropped {cost['frames_dropped']:,.0f} unparsed,"
        f" {cost['flood_hangups']:.0f} calls hung up (flood), {cost['calls_created']:.0f}"
        f" calls created, service CPU {cost['service_cpu_percent']:.0f} % of a core"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
