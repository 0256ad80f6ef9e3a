"""Benchmark: one service worker supervising 2,000 idle Realtime calls.

Every call the service creates gets a sideband, held open for the call's life,
over which the supervisor reverts a browser's policy-breaking
`session.update`. This measures what that costs and how fast it reacts:

1. starts a throwaway redis-server (if installed), the emulator
   (`python -m service emulator --fake-media`: calls without media, so 2,000
   fit on a shared 2-core machine) and the service (one worker, no caller
   auth, the emulator as its upstream, `POLICY_ALLOWED_VOICES=alloy` so any
   other voice is an override);
2. creates `--calls` Realtime calls through the service (bare SDP offers,
   `--concurrency` at a time) and waits until the service's gauge
   `rtp_calls_supervised` reaches that number;
3. reads the service's RSS before and after, and its CPU over `--idle-s`
   seconds while the calls sit idle;
4. for `--reverts` calls, plays a browser override through the emulator's
   `POST /_emulator/calls/{id}/client_event` and reads back
   `reverted_after_ms`, the emulator's own clock from the browser's update to
   the service's revert over the sideband;
5. on the same calls, plays a browser `response.create` asking for a voice the
   policy does not allow (`verse`) through the same control and reads the
   call's `client_events` timeline: cancel latency is from the data channel's
   `response.create` (recorded as soon as its `response.created` is emitted:
   the timeline has no server-event times) to the sideband's `response.cancel`;
6. hangs every call up through the service and stops the service;
7. unless `--deletes 0`: starts a second service with
   `POLICY_INSTRUCTIONS_MODE=server` (and `POLICY_INSTRUCTIONS`), creates
   `--deletes` calls, plays a browser `conversation.item.create` of a `system`
   message (its id chosen here) on each and reads the timeline from it to the
   sideband's `conversation.item.delete`; a data-channel
   `conversation.item.retrieve` of that id then checks that it was that item
   that went; then the cancel of step 5 again, on those calls. Hangs those up;
8. unless `--turns 0`: starts a third service with `CALLS_RESPONSES=server`,
   creates `--turns` calls and on each ends a browser audio turn
   (`input_audio_buffer.append` then `.commit` on the data channel). Turn
   latency is from the data channel's commit (recorded as its
   `input_audio_buffer.committed` is emitted) to the sideband's
   `response.create` (recorded as its `response.created` is emitted): what
   server mode adds to each turn, where OpenAI's own turn detection would
   have started the response at the commit. Then a plain browser
   `response.create` (nothing in it breaks a rule: only the supervisor's mark
   is missing) to the sideband's `response.cancel`. Hangs those up;
9. unless `--metering 0`: dollar metering under load. GPT-Live calls, because
   the emulator reports their cumulative usage on its own every
   `--usage-interval` s (5) per call, where a Realtime call's usage comes only
   with a response a client must play. Three times, on a fresh service each
   time: with a dollar budget (`QUOTA_USD_PER_DAY`: each usage event priced,
   counted with the other calls' of the moment in one `Counters.add` and held
   to the budget); without (`QUOTA_USD_PER_DAY` unset: the shipped price
   table cannot be emptied, so the cost is still priced and counted; what
   differs is the budget's check); and the control, against a second
   emulator whose Live sessions send a transcript fragment
   (`session.input_transcript.delta`, about a report's size) at the same
   interval instead of usage: the same frames, received and read, metering
   nothing. Each run creates `--metering` Live sessions, waits until the
   youngest is past GPT-Live's 15 start seconds (before them a report costs
   nothing new and writes nothing), reads the worker's CPU over
   `--metering-s` s, hangs them up. What metering adds is the budget run's
   CPU above the control's; per usage event, that over the events in the
   window (calls x window / interval, each call's clock ticking on its own).
   The frames' own cost is the control's CPU above step 3's idle. Then stops
   every process.

Every timeline figure is the emulator's, in whole milliseconds on its
monotonic clock. Goals: RSS <= 250 MB and idle CPU < 5 % of one core with
2,000 supervised calls, revert p99 <= 250 ms, cancel p99 <= 50 ms (the
issue's goal for server mode), delete p99 <= 250 ms; with CALLS_RESPONSES=server
turn p99 <= 30 ms added and untagged cancel p99 <= 50 ms; metering 2,000 calls
reporting every 5 s adds < 2 % of a core. It measures: the exit code is 0
whether the goals are met or not (1 only if it could not run).

`uv run python bench/supervision.py [--calls 2000] [--reverts 200] [--deletes 200] [--turns 200]
[--metering 2000]`
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from harness.peers import base_env
from harness.processes import Probe, Proc, StartError, free_port, stop_all, wait_ready
from harness.sampling import tree_cpu_s, tree_rss_kib
from harness.settings import HOST, LOG_DIR

GAUGE = "rtp_calls_supervised"
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=bench\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)
OVERRIDE = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "instructions": "override",
        "audio": {"output": {"voice": "verse"}},
    },
}
# A response in a voice the policy does not allow: the service cancels it.
RESPONSE = {"type": "response.create", "response": {"audio": {"output": {"voice": "verse"}}}}
SERVER_INSTRUCTIONS = "You are the benchmark's assistant."
# A browser's own instructions while the server sets them: the service deletes the item.
SYSTEM_ITEM_ID = "item_bench_system"
SYSTEM_ITEM = {
    "type": "conversation.item.create",
    "item": {
        "id": SYSTEM_ITEM_ID,
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "override"}],
    },
}
# A browser's audio turn, ended by hand (the emulator's VAD has no audio to hear).
APPEND = {"type": "input_audio_buffer.append", "audio": "AAAA"}
COMMIT = {"type": "input_audio_buffer.commit"}
# A browser's own response, breaking no rule: under CALLS_RESPONSES=server only the
# supervisor's mark is missing, and that alone has it cancelled.
PLAIN_RESPONSE = {"type": "response.create"}
UPSTREAM_KEY = "emulator-accepts-any-key"
MAX_RSS_MB = 250.0
MAX_IDLE_CPU_PERCENT = 5.0
MAX_REVERT_P99_MS = 250.0
MAX_CANCEL_P99_MS = 50.0
MAX_DELETE_P99_MS = 250.0
MAX_TURN_P99_MS = 30.0
MAX_UNTAGGED_CANCEL_P99_MS = 50.0
MAX_METERING_CPU_PERCENT = 2.0
CONTROL = "frames only"
"""Step 9's control run: the same sessions and frames, none of them usage."""
LIVE_START_S = 15.0
"""GPT-Live's start seconds: what a WebRTC session's creation charges, before which its
usage reports cost nothing new (`service/billing/prices.toml`)."""
REVERT_WAIT_S = 3.0
ACTION_WAIT_S = 3.0
READY_S = 30.0


@dataclass
class Metered:
    """One metering run: its calls, and the worker's CPU over the window."""

    calls: int
    supervised: int
    cpu_s: float
    window_s: float
    events: float
    """Usage events in the window: calls x window / the emulator's interval."""
    usd: float
    """`rtp_cost_usd_total{kind="live"}` counted in the window (each event priced)."""

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.window_s


@dataclass
class Figures:
    """What one run measured; None where a step could not measure."""

    calls_created: int = 0
    create_s: float = 0.0
    supervised: int = 0
    supervised_after_s: float | None = None
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    idle_cpu_percent: float | None = None
    reverts: list[float] | None = None
    reverts_missing: int = 0
    cancels: list[float] | None = None
    cancels_missing: int = 0
    cancels_live: int = 0
    """Cancels that found the response still in progress (answered `response.done`)."""
    server_cancels: list[float] | None = None
    server_cancels_missing: int = 0
    deletes: list[float] | None = None
    deletes_missing: int = 0
    deletes_unverified: int = 0
    """Deletes after which the browser's item could still be retrieved."""
    delete_calls: int = 0
    turns: list[float] | None = None
    turns_missing: int = 0
    untagged_cancels: list[float] | None = None
    untagged_cancels_missing: int = 0
    turn_calls: int = 0
    metering: dict[str, Metered] | None = None
    """Step 9's runs by name: `budget` (QUOTA_USD_PER_DAY set), `no budget`."""
    metering_calls: int = 0
    hangups_ok: int = 0
    service_exit: int | None = None


def start(name: str, command: list[str], env: dict[str, str], port: int, probe: Probe) -> Proc:
    """Start a process logging to bench/results/logs, and wait until the probe answers 200."""
    proc = Proc(name, command, env, LOG_DIR / f"supervision-{name}.log")
    wait_ready(proc, port, probe, READY_S)
    return proc


def start_redis() -> tuple[Proc | None, str | None]:
    """A throwaway loopback redis-server and its URL, or (None, None) if none is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_port()
    command = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    proc = Proc("redis", command, base_env(), LOG_DIR / "supervision-redis.log")
    deadline = time.monotonic() + 10
    client = redis.Redis(host=HOST, port=port, socket_timeout=1.0)
    try:
        while not _pings(client):
            if time.monotonic() > deadline or not proc.alive():
                raise StartError(f"redis-server did not answer\n{proc.log_tail()}")
            time.sleep(0.05)
    finally:
        client.close()
    return proc, f"redis://{HOST}:{port}/0"


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


async def bounded(
    job: Callable[[str], Awaitable[None]], items: Iterable[str], concurrency: int
) -> None:
    """Run `job` on every item, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: str) -> None:
        async with gate:
            await job(item)

    await asyncio.gather(*(one(item) for item in items))


async def gauge(client: httpx.AsyncClient) -> int:
    """The service's `rtp_calls_supervised`, summed over its labels (0 if absent)."""
    text = (await client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(GAUGE) and line[len(GAUGE) : len(GAUGE) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def create_calls(service: httpx.AsyncClient, count: int, concurrency: int) -> list[str]:
    """Create `count` Realtime calls through the service; their ids."""
    ids: list[str] = []
    headers = {"Content-Type": "application/sdp"}

    async def create(_: str) -> None:
        response = await service.post("/v1/realtime/calls", content=OFFER, headers=headers)
        if response.status_code == 201:
            ids.append(response.headers["location"].rsplit("/", 1)[1])
        elif len(ids) == 0:
            print(f"  call refused: {response.status_code} {response.text[:200]}")

    await bounded(create, (str(index) for index in range(count)), concurrency)
    return ids


async def wait_supervised(service: httpx.AsyncClient, target: int, timeout_s: float) -> int:
    """Poll the gauge until it reaches `target` or `timeout_s` passes; its last value."""
    deadline = time.monotonic() + timeout_s
    value = await gauge(service)
    while value < target and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        value = await gauge(service)
    return value


async def revert_latency(
    emulator: httpx.AsyncClient, call_ids: list[str], concurrency: int
) -> tuple[list[float], int]:
    """Play a browser override on each call; (reverted_after_ms of each reverted, missing)."""
    reverted: list[float] = []
    missing = 0

    async def override(call_id: str) -> None:
        nonlocal missing
        control = f"/_emulator/calls/{call_id}"
        await emulator.post(f"{control}/client_event", json=OVERRIDE)
        deadline = time.monotonic() + REVERT_WAIT_S
        while time.monotonic() < deadline:
            overrides = (await emulator.get(control)).json().get("overrides") or []
            if overrides and overrides[-1]["reverted_after_ms"] is not None:
                reverted.append(float(overrides[-1]["reverted_after_ms"]))
                return
            await asyncio.sleep(0.02)
        missing += 1

    await bounded(override, call_ids, concurrency)
    return reverted, missing


async def timeline_latency(
    emulator: httpx.AsyncClient, call_id: str, sent: str, answer: str
) -> tuple[float, dict[str, Any]] | None:
    """From the browser's last `sent` to the sideband's next `answer` on the call's timeline
    (ms, and the answer's record); None if none came within `ACTION_WAIT_S`."""
    control = f"/_emulator/calls/{call_id}"
    deadline = time.monotonic() + ACTION_WAIT_S
    while time.monotonic() < deadline:
        timeline: list[dict[str, Any]] = (await emulator.get(control)).json().get(
            "client_events"
        ) or []
        starts = [
            index
            for index, record in enumerate(timeline)
            if record["type"] == sent and record["source"] == "data_channel"
        ]
        if starts:
            start = timeline[starts[-1]]
            for record in timeline[starts[-1] + 1 :]:
                if record["type"] == answer and record["source"] == "sideband":
                    return float(record["at_ms"] - start["at_ms"]), record
        await asyncio.sleep(0.02)
    return None


async def cancel_latency(
    emulator: httpx.AsyncClient,
    call_ids: list[str],
    concurrency: int,
    response: dict[str, Any] = RESPONSE,
) -> tuple[list[float], int, int]:
    """Play a browser `response.create` in a voice the policy refuses on each call;
    (ms to each sideband `response.cancel`, missing, cancels that found it in progress)."""
    cancelled: list[float] = []
    missing = live = 0

    async def respond(call_id: str) -> None:
        nonlocal missing, live
        await emulator.post(f"/_emulator/calls/{call_id}/client_event", json=response)
        found = await timeline_latency(emulator, call_id, "response.create", "response.cancel")
        if found is None:
            missing += 1
            return
        cancelled.append(found[0])
        live += "response.done" in found[1]["answered"]

    await bounded(respond, call_ids, concurrency)
    return cancelled, missing, live


async def delete_latency(
    emulator: httpx.AsyncClient, call_ids: list[str], concurrency: int
) -> tuple[list[float], int, int]:
    """Play a browser `system` message on each call; (ms to each sideband
    `conversation.item.delete`, missing, deletes after which the item was still there)."""
    deleted: list[float] = []
    missing = unverified = 0

    async def add(call_id: str) -> None:
        nonlocal missing, unverified
        events = f"/_emulator/calls/{call_id}/client_event"
        await emulator.post(events, json=SYSTEM_ITEM)
        found = await timeline_latency(
            emulator, call_id, "conversation.item.create", "conversation.item.delete"
        )
        if found is None:
            missing += 1
            return
        deleted.append(found[0])
        retrieve = {"type": "conversation.item.retrieve", "item_id": SYSTEM_ITEM_ID}
        emitted = (await emulator.post(events, json=retrieve)).json().get("emitted")
        unverified += emitted != ["error"]

    await bounded(add, call_ids, concurrency)
    return deleted, missing, unverified


async def turn_latency(
    emulator: httpx.AsyncClient, call_ids: list[str], concurrency: int
) -> tuple[list[float], int]:
    """End a browser audio turn on each call; (ms from each commit to the sideband's
    `response.create`, missing)."""
    answered: list[float] = []
    missing = 0

    async def turn(call_id: str) -> None:
        nonlocal missing
        events = f"/_emulator/calls/{call_id}/client_event"
        await emulator.post(events, json=APPEND)
        await emulator.post(events, json=COMMIT)
        found = await timeline_latency(
            emulator, call_id, "input_audio_buffer.commit", "response.create"
        )
        if found is None or "response.created" not in found[1]["answered"]:
            missing += 1
            return
        answered.append(found[0])

    await bounded(turn, call_ids, concurrency)
    return answered, missing


async def hang_up(service: httpx.AsyncClient, call_ids: list[str], concurrency: int) -> int:
    """Hang every call up through the service; how many answered 2xx."""
    done = 0

    async def one(call_id: str) -> None:
        nonlocal done
        response = await service.post(f"/v1/realtime/calls/{call_id}/hangup")
        done += response.is_success

    await bounded(one, call_ids, concurrency)
    return done


async def measure(
    args: argparse.Namespace, service: Proc, service_url: str, emu_url: str
) -> Figures:
    """Steps 2 to 5 against running processes."""
    figures = Figures()
    # Expire pooled connections before uvicorn's 5 s keep-alive closes them: after the
    # idle measurement a reused connection would otherwise race its own close (ReadError).
    limits = httpx.Limits(max_connections=args.concurrency, keepalive_expiry=2.0)
    async with (
        httpx.AsyncClient(base_url=service_url, timeout=30, limits=limits) as to_service,
        httpx.AsyncClient(base_url=emu_url, timeout=30, limits=limits) as to_emulator,
    ):
        await asyncio.sleep(1.0)  # let start-up work settle before the baseline
        figures.rss_before_mb = tree_rss_kib(service.pid) / 1024
        started = time.monotonic()
        call_ids = await create_calls(to_service, args.calls, args.concurrency)
        figures.calls_created = len(call_ids)
        figures.create_s = time.monotonic() - started
        print(f"  created {len(call_ids):,} calls in {figures.create_s:.1f} s")
        figures.supervised = await wait_supervised(to_service, len(call_ids), args.supervise_s)
        if figures.supervised >= len(call_ids) > 0:
            figures.supervised_after_s = time.monotonic() - started
        print(f"  {GAUGE} = {figures.supervised:,}")
        await asyncio.sleep(2.0)  # attach work done; now idle
        figures.rss_after_mb = tree_rss_kib(service.pid) / 1024
        cpu_before, wall_before = tree_cpu_s(service.pid), time.monotonic()
        await asyncio.sleep(args.idle_s)
        cpu = tree_cpu_s(service.pid) - cpu_before
        figures.idle_cpu_percent = 100.0 * cpu / (time.monotonic() - wall_before)
        sample = call_ids[: args.reverts]
        if sample:
            figures.reverts, figures.reverts_missing = await revert_latency(
                to_emulator, sample, args.revert_concurrency
            )
            print(f"  reverts: {len(figures.reverts)} ({figures.reverts_missing} missing)")
            figures.cancels, figures.cancels_missing, figures.cancels_live = await cancel_latency(
                to_emulator, sample, args.revert_concurrency
            )
            print(f"  cancels: {len(figures.cancels)} ({figures.cancels_missing} missing)")
        figures.hangups_ok = await hang_up(to_service, call_ids, args.concurrency)
        left = await wait_supervised(to_service, 0, 0)
        print(f"  hung up {figures.hangups_ok:,} calls; {GAUGE} now {left:,}")
    return figures


@asynccontextmanager
async def phase_calls(
    args: argparse.Namespace, count: int, label: str, service_url: str, emu_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """`count` supervised calls on a phase's own service; the emulator's client; hung up after."""
    limits = httpx.Limits(max_connections=args.concurrency, keepalive_expiry=2.0)
    async with (
        httpx.AsyncClient(base_url=service_url, timeout=30, limits=limits) as to_service,
        httpx.AsyncClient(base_url=emu_url, timeout=30, limits=limits) as to_emulator,
    ):
        call_ids = await create_calls(to_service, count, args.concurrency)
        supervised = await wait_supervised(to_service, len(call_ids), args.supervise_s)
        print(f"  {label}: created {len(call_ids):,} calls; {GAUGE} = {supervised:,}")
        await asyncio.sleep(1.0)  # attach work done
        yield to_emulator, call_ids
        hung = await hang_up(to_service, call_ids, args.concurrency)
        print(f"  hung up {hung:,} calls")


async def measure_deletes(
    args: argparse.Namespace, figures: Figures, service_url: str, emu_url: str
) -> None:
    """Step 7 against a service in server instructions mode."""
    async with phase_calls(args, args.deletes, "server mode", service_url, emu_url) as (
        to_emulator,
        call_ids,
    ):
        figures.delete_calls = len(call_ids)
        deleted = await delete_latency(to_emulator, call_ids, args.revert_concurrency)
        figures.deletes, figures.deletes_missing, figures.deletes_unverified = deleted
        print(f"  deletes: {len(figures.deletes)} ({figures.deletes_missing} missing)")
        cancelled = await cancel_latency(to_emulator, call_ids, args.revert_concurrency)
        figures.server_cancels, figures.server_cancels_missing, _ = cancelled
        print(f"  cancels: {len(cancelled[0])} ({cancelled[1]} missing)")


async def measure_turns(
    args: argparse.Namespace, figures: Figures, service_url: str, emu_url: str
) -> None:
    """Step 8 against a service in server responses mode."""
    async with phase_calls(args, args.turns, "server responses", service_url, emu_url) as (
        to_emulator,
        call_ids,
    ):
        figures.turn_calls = len(call_ids)
        figures.turns, figures.turns_missing = await turn_latency(
            to_emulator, call_ids, args.revert_concurrency
        )
        print(f"  turns: {len(figures.turns)} ({figures.turns_missing} missing)")
        cancelled = await cancel_latency(
            to_emulator, call_ids, args.revert_concurrency, PLAIN_RESPONSE
        )
        figures.untagged_cancels, figures.untagged_cancels_missing, _ = cancelled
        print(f"  untagged cancels: {len(cancelled[0])} ({cancelled[1]} missing)")


async def create_live(service: httpx.AsyncClient, count: int, concurrency: int) -> list[str]:
    """Create `count` GPT-Live WebRTC sessions through the service; their ids."""
    ids: list[str] = []
    body = {"session": {}, "transport": {"type": "webrtc", "sdp": OFFER.decode()}}

    async def create(_: str) -> None:
        response = await service.post("/v1/live/sessions", json=body)
        if response.status_code == 200:
            ids.append(response.json()["session"]["id"])
        elif len(ids) == 0:
            print(f"  session refused: {response.status_code} {response.text[:200]}")

    await bounded(create, (str(index) for index in range(count)), concurrency)
    return ids


async def live_usd(client: httpx.AsyncClient) -> float:
    """The service's `rtp_cost_usd_total` of GPT-Live sessions, summed over models."""
    total = 0.0
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("rtp_cost_usd_total{") and 'kind="live"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def measure_metering(
    args: argparse.Namespace, service: Proc, service_url: str, label: str
) -> Metered:
    """Step 9, one run: `--metering` Live sessions reporting usage, the worker's CPU over
    `--metering-s` once the youngest is past its start seconds."""
    limits = httpx.Limits(max_connections=args.concurrency, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=service_url, timeout=30, limits=limits) as to_service:
        ids = await create_live(to_service, args.metering, args.concurrency)
        created = time.monotonic()
        supervised = await wait_supervised(to_service, len(ids), args.supervise_s)
        print(f"  {label}: created {len(ids):,} Live sessions; {GAUGE} = {supervised:,}")
        # Past the youngest's start seconds (and one report more): every report now costs.
        await asyncio.sleep(
            max(0.0, created + LIVE_START_S + args.usage_interval - time.monotonic())
        )
        usd_before = await live_usd(to_service)
        cpu_before, wall_before = tree_cpu_s(service.pid), time.monotonic()
        await asyncio.sleep(args.metering_s)
        cpu = tree_cpu_s(service.pid) - cpu_before
        window = time.monotonic() - wall_before
        usd = await live_usd(to_service) - usd_before
        done = 0

        async def hang_up_live(session_id: str) -> None:
            nonlocal done
            response = await to_service.post(f"/v1/live/sessions/{session_id}/hangup")
            done += response.is_success

        await bounded(hang_up_live, ids, args.concurrency)
        print(f"  hung up {done:,} sessions")
    events = len(ids) * window / args.usage_interval
    return Metered(len(ids), supervised, cpu, window, events, usd)


def metering_rows(figures: Figures) -> list[tuple[str, str, str]]:
    """Step 9's goal row: what metering adds (the budget run above the control's frames that
    meter nothing), what the budget's check adds, and CPU per usage event."""
    goal = (
        f"metering {figures.metering_calls:,} calls reporting usage adds"
        f" < {MAX_METERING_CPU_PERCENT:g} % of a core"
    )
    runs = figures.metering
    if runs is None:
        return [(goal, "not measured", "not run")]
    on, off, control = runs.get("budget"), runs.get("no budget"), runs.get(CONTROL)
    if (
        on is None
        or off is None
        or control is None
        or not on.events
        or any(run.supervised < run.calls for run in (on, off, control))
    ):
        return [(goal, "not measured", "a run did not supervise every session")]
    added = on.cpu_percent - control.cpu_percent
    per_event_us = 1e4 * added * on.window_s / on.events
    text = (
        f"{on.cpu_percent:.2f} % with QUOTA_USD_PER_DAY, {off.cpu_percent:.2f} % without,"
        f" {control.cpu_percent:.2f} % for the same frames metering nothing:"
        f" metering adds {added:.2f} % ({per_event_us:.0f} µs per usage event),"
        f" the budget's check {on.cpu_percent - off.cpu_percent:+.2f} %;"
        f" over {on.window_s:.0f} s, ~{on.events:,.0f} usage events"
        f" ({on.events / on.window_s:.0f}/s, ${on.usd:.4f} counted in it)"
    )
    if figures.idle_cpu_percent is not None:
        frames = control.cpu_percent - figures.idle_cpu_percent
        text += (
            f"; the frames themselves {frames:.2f} % above step 3's idle"
            f" {figures.idle_cpu_percent:.2f} %"
            f" ({1e4 * frames * control.window_s / control.events:.0f} µs per frame)"
        )
    met = added < MAX_METERING_CPU_PERCENT
    return [(goal, "met" if met else "not met", text)]


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report(figures: Figures, calls: int) -> None:
    """The figures, then the goal table (met / not met / not measured)."""
    grown = figures.rss_after_mb - figures.rss_before_mb
    per_call_kib = grown * 1024 / figures.supervised if figures.supervised else float("nan")
    print(
        f"\nservice worker: RSS {figures.rss_before_mb:.1f} MB before, "
        f"{figures.rss_after_mb:.1f} MB with {figures.supervised:,} supervised calls "
        f"({per_call_kib:.1f} KiB per supervised call); idle CPU "
        + (f"{figures.idle_cpu_percent:.2f} % of one core" if figures.idle_cpu_percent else "-")
    )
    supervised = figures.supervised >= calls > 0
    rows: list[tuple[str, str, str]] = []
    if not supervised:
        why = f"{GAUGE} reached {figures.supervised:,} of {calls:,} (supervisor missing?)"
        rows.append((f"RSS <= {MAX_RSS_MB:g} MB with {calls:,} calls", "not measured", why))
        rows.append((f"idle CPU < {MAX_IDLE_CPU_PERCENT:g} %", "not measured", why))
    else:
        rss_met = figures.rss_after_mb <= MAX_RSS_MB
        rows.append(
            (
                f"RSS <= {MAX_RSS_MB:g} MB with {calls:,} supervised calls",
                "met" if rss_met else "not met",
                f"{figures.rss_after_mb:.1f} MB ({per_call_kib:.1f} KiB per call)",
            )
        )
        cpu = figures.idle_cpu_percent or 0.0
        rows.append(
            (
                f"idle CPU < {MAX_IDLE_CPU_PERCENT:g} % of one core",
                "met" if cpu < MAX_IDLE_CPU_PERCENT else "not met",
                f"{cpu:.2f} %",
            )
        )
    rows.append(
        latency_row(
            f"revert p99 <= {MAX_REVERT_P99_MS:g} ms",
            MAX_REVERT_P99_MS,
            figures.reverts,
            figures.reverts_missing,
            "reverts",
            "not reverted",
        )
    )
    cancel_goal = f"cancel p99 <= {MAX_CANCEL_P99_MS:g} ms (the issue's goal for server mode)"
    rows.append(
        latency_row(
            cancel_goal + ", on the revert calls",
            MAX_CANCEL_P99_MS,
            figures.cancels,
            figures.cancels_missing,
            "cancels",
            "not cancelled",
            "; from the data channel's response.create (the timeline has no"
            f" response.created time); {figures.cancels_live} of {len(figures.cancels or [])}"
            " found the response in progress (the emulator runs a browser's to its end at once)",
        )
    )
    rows.append(
        latency_row(
            cancel_goal + ", POLICY_INSTRUCTIONS_MODE=server",
            MAX_CANCEL_P99_MS,
            figures.server_cancels,
            figures.server_cancels_missing,
            "cancels",
            "not cancelled",
            " (as above, on the delete calls)",
        )
    )
    rows.append(
        latency_row(
            f"delete p99 <= {MAX_DELETE_P99_MS:g} ms (POLICY_INSTRUCTIONS_MODE=server)",
            MAX_DELETE_P99_MS,
            figures.deletes,
            figures.deletes_missing,
            "deletes",
            "not deleted",
            f"; {len(figures.deletes or []) - figures.deletes_unverified} of"
            f" {len(figures.deletes or [])} confirmed gone by a retrieve",
        )
    )
    rows.append(
        latency_row(
            f"turn p99 <= {MAX_TURN_P99_MS:g} ms added (CALLS_RESPONSES=server)",
            MAX_TURN_P99_MS,
            figures.turns,
            figures.turns_missing,
            "turns",
            "not answered",
            "; from the data channel's input_audio_buffer.commit (its committed) to the"
            " sideband's response.create (its response.created)",
        )
    )
    rows.append(
        latency_row(
            f"untagged cancel p99 <= {MAX_UNTAGGED_CANCEL_P99_MS:g} ms (CALLS_RESPONSES=server)",
            MAX_UNTAGGED_CANCEL_P99_MS,
            figures.untagged_cancels,
            figures.untagged_cancels_missing,
            "cancels",
            "not cancelled",
            "; a browser response.create breaking no rule but the missing mark",
        )
    )
    rows.extend(metering_rows(figures))
    print("\n| goal | verdict | figures |\n|---|---|---|")
    for goal, verdict, text in rows:
        shown = f"**{verdict}**" if verdict == "met" else f"**{verdict.upper()}**"
        print(f"| {goal} | {shown} | {text} |")


def latency_row(
    name: str,
    goal_ms: float,
    samples: list[float] | None,
    missing: int,
    noun: str,
    absent: str,
    note: str = "",
) -> tuple[str, str, str]:
    """A latency goal's row (p50, p99, count, missing), also printed as a figure line."""
    if not samples:
        if samples is None:
            return name, "not measured", "not run"
        return name, "not measured", f"{missing} played, none {absent.split()[-1]}"
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    met = p99 <= goal_ms and missing == 0
    text = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(samples)} {noun}"
    if missing:
        text += f"; {missing} {absent} in {ACTION_WAIT_S:g} s"
    text += note
    print(f"{noun[:-1]} latency: {text}")
    return name, "met" if met else "not met", text


def raise_nofile(needed: int) -> None:
    """Sockets: each call holds one in the emulator and one in the service; children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else needed
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        print(f"warning: ulimit -n is below {needed}; calls may fail", file=sys.stderr)


def main() -> int:
    """Run the benchmark; 0 whatever the verdicts, 1 if a process would not start."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--reverts", type=int, default=200)
    parser.add_argument(
        "--deletes", type=int, default=None, help="server-mode calls (default: --reverts)"
    )
    parser.add_argument(
        "--turns", type=int, default=None, help="server-responses calls (default: --reverts)"
    )
    parser.add_argument(
        "--metering", type=int, default=None, help="Live sessions metered (default: --calls)"
    )
    parser.add_argument("--metering-s", type=float, default=30.0, help="metering CPU window")
    parser.add_argument(
        "--usage-interval", type=float, default=5.0, help="the emulator's Live usage reports, s"
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--revert-concurrency", type=int, default=10)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--supervise-s", type=float, default=120.0, help="wait for the gauge")
    parser.add_argument(
        "--service-env", action="append", default=[], help="KEY=VALUE for the service"
    )
    args = parser.parse_args()
    if args.deletes is None:
        args.deletes = args.reverts
    if args.turns is None:
        args.turns = args.reverts
    if args.metering is None:
        args.metering = args.calls
    raise_nofile(2 * max(args.calls, args.metering) + 512)
    python = sys.executable
    try:
        redis_proc, redis_url = start_redis()
        emu_port, port = free_port(), free_port()
        emulator_cmd = [
            python,
            "-m",
            "service",
            "emulator",
            "--host",
            HOST,
            "--port",
            str(emu_port),
        ]
        emulator_cmd += ["--fake-media", "--max-calls", str(max(args.calls, args.metering) + 100)]
        emulator_cmd += ["--usage-interval", str(args.usage_interval)]
        start("emulator", emulator_cmd, base_env(), emu_port, Probe("GET", "/healthz"))
        env = {
            **base_env(),
            "HOST": HOST,
            "WORKERS": "1",
            "AUTH_MODE": "none",
            "LOG_FORMAT": "json",
            "METRICS_ENABLED": "true",
            "OPENAI_BASE_URL": f"http://{HOST}:{emu_port}/v1",
            "OPENAI_API_KEY": UPSTREAM_KEY,
            # Only alloy: a browser's switch to any other voice breaks the policy.
            "POLICY_ALLOWED_VOICES": "alloy",
            "POLICY_DEFAULT_VOICE": "alloy",
            **({"REDIS_URL": redis_url} if redis_url else {}),
            **dict(item.split("=", 1) for item in args.service_env),
        }
        env["PORT"] = str(port)
        service = start("service", [python, "-m", "service"], env, port, Probe("GET", "/healthz"))
        print(
            f"supervision: {args.calls:,} Realtime calls through one worker"
            f" (redis: {'yes' if redis_proc else 'no, in-memory'}; emulator --fake-media)"
        )
        service_url, emu_url = f"http://{HOST}:{port}", f"http://{HOST}:{emu_port}"
        figures = asyncio.run(measure(args, service, service_url, emu_url))
        service.stop(grace_s=15)
        figures.service_exit = service.popen.returncode
        print(f"  service stopped with exit code {figures.service_exit}")
        if args.deletes > 0:
            port = free_port()
            server_env = {
                **env,
                "PORT": str(port),
                "POLICY_INSTRUCTIONS_MODE": "server",
                "POLICY_INSTRUCTIONS": SERVER_INSTRUCTIONS,
                # Its own database: nothing of the first service's calls to adopt.
                **({"REDIS_URL": redis_url.rsplit("/", 1)[0] + "/1"} if redis_url else {}),
            }
            command = [python, "-m", "service"]
            server = start("service-server", command, server_env, port, Probe("GET", "/healthz"))
            print(f"supervision, server instructions mode: {args.deletes:,} calls")
            asyncio.run(measure_deletes(args, figures, f"http://{HOST}:{port}", emu_url))
            server.stop(grace_s=15)
        if args.turns > 0:
            port = free_port()
            turns_env = {
                **env,
                "PORT": str(port),
                "CALLS_RESPONSES": "server",
                **({"REDIS_URL": redis_url.rsplit("/", 1)[0] + "/2"} if redis_url else {}),
            }
            command = [python, "-m", "service"]
            turns = start("service-turns", command, turns_env, port, Probe("GET", "/healthz"))
            print(f"supervision, server responses mode: {args.turns:,} calls")
            asyncio.run(measure_turns(args, figures, f"http://{HOST}:{port}", emu_url))
            turns.stop(grace_s=15)
        figures.metering_calls = args.metering
        if args.metering > 0:
            figures.metering = {}
            # The control: as many frames, of about the size, that meter nothing (transcript
            # fragments instead of usage reports), from an emulator of its own.
            control_port = free_port()
            control_cmd = [*emulator_cmd, "--usage-interval", "0"]
            control_cmd[control_cmd.index("--port") + 1] = str(control_port)
            control_cmd += ["--transcript-interval", str(args.usage_interval)]
            start(
                "emulator-control", control_cmd, base_env(), control_port, Probe("GET", "/healthz")
            )
            control_base = {"OPENAI_BASE_URL": f"http://{HOST}:{control_port}/v1"}
            runs: tuple[tuple[str, dict[str, str]], ...] = (
                ("budget", {"QUOTA_USD_PER_DAY": "1000000"}),
                ("no budget", {}),
                (CONTROL, control_base),
            )
            for database, (label, budget) in enumerate(runs, start=3):
                port = free_port()
                metered_env = {
                    **{k: v for k, v in env.items() if k != "QUOTA_USD_PER_DAY"},
                    "PORT": str(port),
                    **budget,
                    **(
                        {"REDIS_URL": f"{redis_url.rsplit('/', 1)[0]}/{database}"}
                        if redis_url
                        else {}
                    ),
                }
                command = [python, "-m", "service"]
                name = "service-metering-" + label.replace(" ", "-")
                metered = start(name, command, metered_env, port, Probe("GET", "/healthz"))
                print(f"supervision, metering ({label}): {args.metering:,} GPT-Live sessions")
                figures.metering[label] = asyncio.run(
                    measure_metering(args, metered, f"http://{HOST}:{port}", label)
                )
                metered.stop(grace_s=15)
    except StartError as error:
        print(f"supervision benchmark could not start: {error}", file=sys.stderr)
        return 1
    finally:
        stop_all()
    report(figures, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
