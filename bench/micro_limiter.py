"""Micro-benchmark: what the Redis-backed rate limiter adds to a mint (goal: p50 <= 0.3 ms).

Starts a throwaway redis-server on a free loopback port, then times
`Limiter.check` (per-identity rate + per-IP rate + daily quota: one EVALSHA
round trip) one call at a time, which is what it adds to a mint's latency, and
reports the throughput of 50 concurrent callers; the in-memory store is
measured the same way for comparison.
`uv run python bench/micro_limiter.py` (needs `redis-server` on PATH).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import time

import redis

from service.config import Settings
from service.limits import Limiter
from service.store import Store
from service.store.memory import MemoryStore
from service.store.redis import RedisStore

CALLS = 5_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99)] * 1000
    return f"p50 {p50:.3f} ms  p99 {p99:.3f} ms"


async def measure(name: str, store: Store) -> None:
    settings = Settings(
        _env_file=None,
        auth_mode="none",
        openai_api_key="sk-bench",
        workers=1,
        rate_limit_per_identity="1000000/second",
        rate_limit_per_ip="1000000/second",
        quota_mints_per_day=10**9,
    )
    limiter = Limiter(settings, store)
    for index in range(200):
        await limiter.check(f"warm-{index}", "127.0.0.1", f"warm-{index}")
    sequential = []
    for index in range(CALLS):
        started = time.perf_counter()
        await limiter.check(f"caller-{index % 100}", f"10.0.0.{index % 50}", "c")
        sequential.append(time.perf_counter() - started)

    async def caller(number: int) -> None:
        for index in range(CALLS // 50):
            await limiter.check(f"caller-{number}", f"10.0.1.{index % 50}", "c")

    started = time.perf_counter()
    await asyncio.gather(*(caller(number) for number in range(50)))
    rate = CALLS / (time.perf_counter() - started)
    print(
        f"  {name:<8} added per mint: {percentiles(sequential)}   "
        f"throughput with 50 concurrent callers: {rate:,.0f} checks/s"
    )
    await store.aclose()


def wait_for_redis(server: subprocess.Popen[bytes], port: int, timeout_s: float = 10.0) -> None:
    """Until redis-server answers PING: a fixed sleep is too short on a busy 2-core box."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"redis-server exited with code {server.returncode}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"redis-server did not answer within {timeout_s:g} s"
                    ) from None
            time.sleep(0.05)
    finally:
        client.close()


async def main() -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    # A throwaway loopback instance of the redis-server found on PATH.
    server = subprocess.Popen(  # noqa: S603 - a list argv of fixed options, no shell
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_redis(server, port)
        print("rate-limit check (identity rate + IP rate + daily quota), per mint")
        await measure("memory", MemoryStore())
        await measure("redis", RedisStore(f"redis://127.0.0.1:{port}/0", 0.25))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    asyncio.run(main())
