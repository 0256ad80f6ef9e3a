"""Dollars across real processes: after a SIGKILL the adopter counts on from the store, and the
deployment's ceiling holds across two.

The emulator runs as its own process (`--fake-media`, and `--usage-interval 0`:
a Live call reports its usage only when the test asks, through the
`/response` control); service processes share one `redis-server`. Every
Realtime response here is played with 1,000 input and 500 output tokens, of
which the emulator counts a quarter as text (`emulator.calls.responses.usage`):
on gpt-realtime-2, 250 text in ($4/M: $0.001), 750 audio in ($32/M: $0.024),
125 text out ($24/M: $0.003) and 375 audio out ($64/M: $0.024), $0.052 each.
gpt-live-1 costs $0.05 a minute, at least its 15 start seconds.

Each response here finishes while a process holds the call's sideband: one
that finished between the kill and the adoption is seen by no process and
not counted (no sideband replays it); a GPT-Live session's next cumulative
report makes up for any it missed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from fractions import Fraction
from functools import partial
from typing import Any

import httpx
import pytest

from tests.conftest import SDP_OFFER
from tests.paths import LIVE_SESSIONS, METRICS, REALTIME_CALLS
from tests.servers import RedisServer, ServiceProcess, emulator_process, redis_server
from tests.test_call_supervision_processes import (
    GUARD,
    call_state,
    create_call,
    eventually,
    service,
    supervised,
)

pytestmark = pytest.mark.timeout(120)
PLAYED = {"input_tokens": 1000, "output_tokens": 500}
RESPONSE_MICRO = 52_000
"""What one `PLAYED` response costs on gpt-realtime-2 (hand-computed above), micro-dollars."""
LIVE_MICRO_PER_MINUTE = 50_000
LIVE_START_S = 15


@pytest.fixture(name="emulator", scope="module")
def fixture_emulator() -> Iterator[ServiceProcess]:
    with emulator_process("--fake-media", "--usage-interval", "0") as process:
        yield process


@pytest.fixture(name="redis")
def fixture_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def usd(micro: int) -> str:
    """Micro-dollars as the service shows them (`"0.052000"`)."""
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"


def live_micro(seconds: int) -> int:
    """A WebRTC GPT-Live session of `seconds` on gpt-live-1, micro-dollars rounded half up."""
    exact = Fraction(max(seconds, LIVE_START_S) * LIVE_MICRO_PER_MINUTE, 60)
    return int(exact + Fraction(1, 2))


def day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def respond(emulator: ServiceProcess, call_id: str) -> bool:
    """The model answers once on the call (`PLAYED`); whether its `response.done` went out."""
    answered = httpx.post(f"{emulator.url}/_emulator/calls/{call_id}/response", json=PLAYED)
    if answered.status_code != 200:  # the call ended meanwhile
        return False
    return "response.done" in answered.json()["emitted"]


def day_usd(process: ServiceProcess) -> str:
    return str(httpx.get(f"{process.url}/v1/usage").json()["usage"]["usd"])


def state(process: ServiceProcess, path: str) -> dict[str, Any]:
    answer = httpx.get(f"{process.url}{path}")
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


def counted(redis: RedisServer, key: str) -> int:
    client = redis.client()
    try:
        value = client.get(key)
    finally:
        client.close()
    return int(value) if value is not None else 0


def kill_9(
    first: ServiceProcess, second: ServiceProcess, emulator: ServiceProcess, call_id: str
) -> None:
    """SIGKILL the supervising `first`; `second` adopts the call and attaches its sideband."""
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=GUARD)
    eventually(lambda: supervised(second) == 1, "adopted by the second")
    eventually(lambda: call_state(emulator, call_id)["listeners"] >= 1, "attached")


def create_live(process: ServiceProcess) -> str:
    created = httpx.post(
        f"{process.url}{LIVE_SESSIONS}",
        json={"session": {}, "transport": {"type": "webrtc", "sdp": SDP_OFFER}},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["session"]["id"])


def live_seconds(process: ServiceProcess, session_id: str) -> int:
    """The session's usage seconds as the service shows them."""
    return int(state(process, f"{LIVE_SESSIONS}/{session_id}")["usage"]["seconds"])


def reported_past(
    emulator: ServiceProcess, process: ServiceProcess, session_id: str, seconds: int
) -> bool:
    """GPT-Live reports its cumulative usage once more; whether the service has seen more
    than `seconds` of it (the emulator counts whole seconds since the session began)."""
    httpx.post(f"{emulator.url}/_emulator/calls/{session_id}/response", json={})
    return live_seconds(process, session_id) > seconds


def settled(process: ServiceProcess, session_id: str) -> bool:
    """Whether the caller's day shows exactly what the session's reported seconds cost (the
    counters are written at once, the seconds in the state at the keeper's next pass)."""
    return day_usd(process) == usd(live_micro(live_seconds(process, session_id)))


def ceiling_endings(process: ServiceProcess) -> float:
    """The process's `rtp_calls_ended_total{how="ceiling"}`."""
    for line in httpx.get(f"{process.url}{METRICS}").text.splitlines():
        if line.startswith("rtp_calls_ended_total{") and 'how="ceiling"' in line:
            return float(line.split()[-1])
    return 0.0


def stop_both(first: ServiceProcess, second: ServiceProcess) -> None:
    second.stop()
    if first.process.poll() is None:
        first.stop()


class TestKill9:
    """SIGKILL of the supervising process mid-call: the adopter counts on from the store."""

    def test_realtime_responses_before_and_after_are_each_counted_once(
        self, emulator: ServiceProcess, redis: RedisServer
    ) -> None:
        """Two responses before the kill, two after: the caller's day, the call's counter and
        the call's state all show 4 x $0.052 = $0.208 (none lost, none twice)."""
        env = {"CALLS_LEASE_SECONDS": "1", "QUOTA_USD_PER_DAY": "100"}
        first = service(emulator, redis, **env)
        second = service(emulator, redis, **env)
        try:
            call_id = create_call(first)
            eventually(lambda: supervised(first) == 1, "supervised by the first")
            eventually(lambda: call_state(emulator, call_id)["listeners"] >= 1, "attached")
            assert respond(emulator, call_id)
            assert respond(emulator, call_id)
            eventually(lambda: day_usd(first) == usd(2 * RESPONSE_MICRO), "first two counted")
            kill_9(first, second, emulator, call_id)
            assert respond(emulator, call_id)
            assert respond(emulator, call_id)
            total = 4 * RESPONSE_MICRO
            eventually(lambda: day_usd(second) == usd(total), "all four counted")
            key = f"rtp:c:realtime:{call_id}:usd"
            assert counted(redis, key) == total
            path = f"{REALTIME_CALLS}/{call_id}"
            # The record (its usd) is written at the keeper's next pass.
            eventually(lambda: state(second, path)["usage"]["usd"] == usd(total), "state")
            assert counted(redis, f"rtp:d:{day()}:usd") == total
        finally:
            stop_both(first, second)
        assert "call_taken_over" in second.log_path.read_text()

    def test_live_cumulative_usage_is_counted_once_across_the_kill(
        self, emulator: ServiceProcess, redis: RedisServer
    ) -> None:
        """A GPT-Live session past its 15 start seconds, SIGKILLed and adopted, reporting on:
        its cost is that of its last cumulative seconds, once (not the first process's part
        again, nothing of it lost)."""
        env = {"CALLS_LEASE_SECONDS": "1", "QUOTA_USD_PER_DAY": "100"}
        first = service(emulator, redis, **env)
        second = service(emulator, redis, **env)
        try:
            session_id = create_live(first)
            eventually(lambda: supervised(first) == 1, "supervised by the first")
            eventually(lambda: call_state(emulator, session_id)["listeners"] >= 1, "attached")
            # Counted by the first past the start charge, so the adopter has a part to skip.
            eventually(
                lambda: reported_past(emulator, first, session_id, LIVE_START_S + 1),
                f"past {LIVE_START_S + 1} s",
            )
            eventually(lambda: settled(first, session_id), "the first's part counted")
            before = live_seconds(first, session_id)
            kill_9(first, second, emulator, session_id)
            eventually(
                lambda: reported_past(emulator, second, session_id, before + 2),
                f"past {before + 2} s",
            )
            path = f"{LIVE_SESSIONS}/{session_id}"
            eventually(lambda: settled(second, session_id), "counted once")
            total = live_micro(live_seconds(second, session_id))
            assert total > live_micro(before)
            assert counted(redis, f"rtp:c:live:{session_id}:usd") == total
            assert counted(redis, f"rtp:d:{day()}:usd") == total
            eventually(lambda: state(second, path)["usage"]["usd"] == usd(total), "state")
        finally:
            stop_both(first, second)


class TestCeiling:
    """QUOTA_USD_PER_DAY_TOTAL across two processes on one Redis."""

    CALLS_EACH = 3
    CEILING_MICRO = 1_000_000

    def test_every_call_hung_up_within_one_response_each_past_the_ceiling(
        self,
        emulator: ServiceProcess,
        redis: RedisServer,
        record_property: Callable[[str, object], None],
    ) -> None:
        """Three live calls on each of two processes, $1 for the deployment, rounds of one
        response on every open call: every call is hung up once the ceiling is crossed, what
        was spent beyond it is at most one response per live call, all of it counted. (A
        $0.05 reserve per call, so the six fit under the ceiling at admission.)"""
        env = {
            "CALLS_LEASE_SECONDS": "1",
            "QUOTA_USD_PER_DAY_TOTAL": "1",
            "CALLS_RESERVE_USD": "0.05",
        }
        first = service(emulator, redis, **env)
        second = service(emulator, redis, **env)
        try:
            calls = [
                create_call(process) for process in (first, second) for _ in range(self.CALLS_EACH)
            ]
            eventually(
                lambda: supervised(first) == supervised(second) == self.CALLS_EACH, "supervised"
            )
            eventually(
                lambda: all(call_state(emulator, c)["listeners"] >= 1 for c in calls), "attached"
            )
            emitted = dict.fromkeys(calls, 0)
            ceiling_key = f"rtp:d:{day()}:usd"

            def ended(call_id: str) -> bool:
                return call_state(emulator, call_id)["ended"] is not None

            def settled(call_ids: list[str]) -> bool:
                """Each call ended, or its counter shows every response it answered."""
                return all(
                    ended(c)
                    or counted(redis, f"rtp:c:realtime:{c}:usd") == emitted[c] * RESPONSE_MICRO
                    for c in call_ids
                )

            rounds = 0
            while counted(redis, ceiling_key) < self.CEILING_MICRO:
                open_calls = [call_id for call_id in calls if not ended(call_id)]
                assert open_calls, "every call ended before the ceiling was reached"
                rounds += 1
                for call_id in open_calls:  # one response in flight on each open call
                    emitted[call_id] += respond(emulator, call_id)
                eventually(partial(settled, open_calls), "the round counted")
            eventually(lambda: all(ended(c) for c in calls), "every call hung up")
            eventually(
                lambda: ceiling_endings(first) + ceiling_endings(second) == len(calls),
                "every call ended by the ceiling",
            )
        finally:
            stop_both(first, second)
        spent = sum(emitted.values()) * RESPONSE_MICRO
        over = spent - self.CEILING_MICRO
        measured = (
            f"{len(calls)} live calls, {rounds} rounds, {sum(emitted.values())} responses:"
            f" ${usd(spent)} spent, ${usd(over)} beyond the ${usd(self.CEILING_MICRO)} ceiling"
            f" (bound: {len(calls)} x ${usd(RESPONSE_MICRO)} = ${usd(len(calls) * RESPONSE_MICRO)})"
        )
        record_property("over_ceiling", measured)  # in --junitxml reports
        assert 0 <= over <= len(calls) * RESPONSE_MICRO, measured
        assert counted(redis, ceiling_key) == spent, measured
        logs = first.log_path.read_text() + second.log_path.read_text()
        assert "deployment_budget_exceeded" in logs, measured
