"""Micro-benchmark: the upstream HTTP client, transport by transport (CPU per mint).

Why the service's one `httpx.AsyncClient` runs over an aiohttp transport:
this starts the built-in emulator (`python -m service emulator`) on a
loopback port and sends the same mint through each candidate, 50 at a time,
measuring this process's CPU time per request and the requests per second:

- aiohttp alone: the floor, what httpx's overhead is measured against;
- httpx over its own transport (httpcore);
- httpx over `httpx-aiohttp`, called as `client.post`;
- `service.upstream.Upstream` (the service's own path: the same client, a
  prebuilt request, no cookie jar, the capped read).

`uv run python bench/micro_upstream.py [--requests 4000]`. Figures are for
comparing rows of one run: the emulator shares the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from service.config import Settings
from service.upstream import Upstream, build_http_client

CONCURRENCY = 50
WARM_UP = 300
BODY = {"session": {"type": "realtime", "model": "gpt-realtime-2"}}
HEADERS = {"Authorization": "Bearer bench-fake-key", "Content-Type": "application/json"}

Post = Callable[[], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the emulator did not start at {url}")


async def measure(post: Post, requests: int) -> tuple[float, float, int]:
    """(CPU µs per request, requests per second, errors) for `requests` posts, 50 at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)
    errors = 0

    async def one() -> None:
        nonlocal errors
        async with gate:
            try:
                await post()
            except Exception:
                errors += 1

    await asyncio.gather(*(one() for _ in range(WARM_UP)))
    errors = 0
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / requests * 1e6, requests / wall, errors


async def run(base: str, requests: int) -> list[tuple[str, float, float, int]]:
    url = f"{base}/realtime/client_secrets"
    rows: list[tuple[str, float, float, int]] = []
    limits = httpx.Limits(max_connections=512)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as session:

        async def raw() -> None:
            async with session.post(url, json=BODY, headers=HEADERS) as response:
                await response.read()

        rows.append(("aiohttp alone", *await measure(raw, requests)))

    for name, transport in (
        ("httpx, its own transport", httpx.AsyncHTTPTransport(limits=limits)),
        ("httpx over httpx-aiohttp", AiohttpTransport(limits=limits)),
    ):
        async with httpx.AsyncClient(transport=transport) as client:

            async def post(client: httpx.AsyncClient = client) -> None:
                (await client.post(url, json=BODY, headers=HEADERS)).raise_for_status()

            rows.append((name, *await measure(post, requests)))

    settings = Settings(
        _env_file=None,
        auth_mode="none",
        openai_api_key="bench-fake-key",
        openai_base_url=base,
        upstream_max_connections=512,
    )
    upstream = Upstream(settings, build_http_client(settings))
    try:

        async def mint() -> None:
            await upstream.mint_client_secret(BODY, "bench")

        rows.append(("the service's Upstream", *await measure(mint, requests)))
    finally:
        await upstream.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    port = free_port()
    emulator = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "service", "emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}/v1"
        asyncio.run(wait_for(f"http://127.0.0.1:{port}/healthz"))
        rows = asyncio.run(run(base, args.requests))
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    print(f"upstream client, {args.requests} mints, {CONCURRENCY} at a time, against the emulator")
    print(f"  {'client':<28} {'CPU µs/mint':>12} {'mints/s':>9} {'errors':>7}")
    for name, cpu, rate, errors in rows:
        print(f"  {name:<28} {cpu:>12.0f} {rate:>9.0f} {errors:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
