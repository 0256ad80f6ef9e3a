"""Rate limits and quotas, in memory and on a real Redis shared by workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import respx
from pydantic import ValidationError

from service.auth import new_api_key
from service.config import describe
from service.core.env_values import SentinelUrl, parse_sentinel_url
from service.store import Limit, StoreUnavailable
from service.store.redis import RedisStore
from tests.conftest import ClientFor, MakeSettings
from tests.paths import SESSIONS
from tests.servers import (
    FaultyLink,
    RedisServer,
    SentinelSet,
    ServiceProcess,
    free_port,
    make_tls_files,
    redis_server,
    sentinel_set,
    wait_until,
)

pytestmark = pytest.mark.anyio


async def burst(client: httpx.AsyncClient, count: int, **kwargs: Any) -> list[httpx.Response]:
    """`count` concurrent mints."""
    return list(
        await asyncio.gather(*(client.post(SESSIONS, json={}, **kwargs) for _ in range(count)))
    )


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


QUOTA = [Limit("rtp:test:quota", "quota", 100)]
"""One quota counter: its value in Redis says how many times the script ran."""


async def redis_value(url: str, key: str) -> str | None:
    """A key's value, read on a connection of its own."""
    async with aioredis.Redis.from_url(url, decode_responses=True) as admin:
        value = await admin.get(key)
        return None if value is None else str(value)


async def worker_pids(url: str) -> set[str]:
    """The service processes holding connections now (the store names them by pid)."""
    async with aioredis.Redis.from_url(url) as admin:
        clients: list[dict[str, Any]] = await admin.client_list()
    prefix = "realtime-token-proxy:"
    return {c["name"].removeprefix(prefix) for c in clients if c["name"].startswith(prefix)}


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds; fail naming `what` after 30 s (only a hang guard)."""
    try:
        async with asyncio.timeout(30):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"{what}: not after 30 s")


def replicated(server: RedisServer) -> None:
    """Block until the replica has every write the primary took so far."""
    with server.client() as primary:
        primary.set("rtp:test:marker", "1")  # WAIT counts acks of this connection's writes
        # WAIT 1 s at a time (under the client's 2 s socket timeout), for as long as it takes.
        wait_until(lambda: primary.wait(1, 1000) == 1, 30, "the replica acknowledged")


@pytest.fixture(name="redis")
def fixture_redis() -> Iterator[RedisServer]:
    """A real redis-server on a free port."""
    with redis_server() as server:
        yield server


@pytest.fixture(name="store", params=["memory", "redis"])
def fixture_store(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings for each store: process memory, and a real Redis."""
    if request.param == "memory":
        yield {}
    else:
        with redis_server() as server:
            # These tests count mints, not latency: a burst opens one new connection
            # per mint, and on a loaded machine that can outlast the 0.25 s default.
            yield {"redis_url": server.url, "redis_timeout_seconds": 2.0}


class TestLimits:
    """The same behaviour on both stores."""

    async def test_n_plus_k_gives_exactly_n(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """With 5/minute per identity, 8 concurrent mints give exactly 5 successes."""
        client = await client_for(make_settings(rate_limit_per_identity="5/minute", **store))
        assert statuses(await burst(client, 8)) == [200] * 5 + [429] * 3

    async def test_429_carries_retry_after_and_ratelimit_headers(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        store: dict[str, Any],
        upstream: respx.MockRouter,
    ) -> None:
        """Over the limit: 429 with Retry-After and RateLimit-*, and nothing minted."""
        client = await client_for(make_settings(rate_limit_per_identity="1/hour", **store))
        await client.post(SESSIONS, json={})
        refused = await client.post(SESSIONS, json={})
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert 3500 <= int(refused.headers["retry-after"]) <= 3600
        assert refused.headers["ratelimit-limit"] == "1"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert upstream.routes["mint"].call_count == 1

    async def test_success_reports_remaining(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """Each successful mint says how many remain."""
        client = await client_for(make_settings(rate_limit_per_identity="3/minute", **store))
        remaining = [
            (await client.post(SESSIONS, json={})).headers["ratelimit-remaining"] for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]

    async def test_limits_are_per_identity(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """One caller's exhausted limit does not touch another's."""
        key_a, entry_a = new_api_key("a")
        key_b, entry_b = new_api_key("b")
        client = await client_for(
            make_settings(
                auth_mode="api_key",
                auth_api_keys=f"{entry_a},{entry_b}",
                rate_limit_per_identity="1/minute",
                **store,
            )
        )
        assert (
            await client.post(SESSIONS, json={}, headers={"X-API-Key": key_a})
        ).status_code == 200
        assert (
            await client.post(SESSIONS, json={}, headers={"X-API-Key": key_a})
        ).status_code == 429
        assert (
            await client.post(SESSIONS, json={}, headers={"X-API-Key": key_b})
        ).status_code == 200

    async def test_per_ip_limit(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """RATE_LIMIT_PER_IP limits an address whatever the identity."""
        # Per minute, not per second: the burst must not outlast one emission interval.
        client = await client_for(make_settings(rate_limit_per_ip="2/minute", **store))
        assert statuses(await burst(client, 3)) == [200, 200, 429]

    async def test_daily_quota(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """QUOTA_MINTS_PER_DAY caps mints per identity per UTC day."""
        client = await client_for(make_settings(quota_mints_per_day=2, **store))
        responses = [await client.post(SESSIONS, json={}) for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 429]
        assert int(responses[2].headers["retry-after"]) <= 86400

    async def test_refusal_by_one_limit_consumes_none(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """A mint refused by the rate limit does not use up quota."""
        # The rate is per address and the quota per identity (every caller is `anonymous`
        # here), so a new address escapes the rate without any time passing; the proxy
        # in front (TRUSTED_PROXIES) names the address in X-Forwarded-For.
        client = await client_for(
            make_settings(
                rate_limit_per_ip="1/hour",
                quota_mints_per_day=2,
                trusted_proxies="127.0.0.1/32",
                **store,
            )
        )

        async def mint_from(address: str) -> int:
            response = await client.post(SESSIONS, json={}, headers={"X-Forwarded-For": address})
            return response.status_code

        assert await mint_from("203.0.113.1") == 200
        assert await mint_from("203.0.113.1") == 429  # the rate: the quota must not count it
        assert await mint_from("203.0.113.2") == 200  # so one mint of the quota is left
        assert await mint_from("203.0.113.3") == 429  # and only one: the quota does count

    async def test_dry_runs_and_bad_requests_are_not_counted(
        self, client_for: ClientFor, make_settings: MakeSettings, store: dict[str, Any]
    ) -> None:
        """Only requests that reach OpenAI count as mints."""
        client = await client_for(make_settings(rate_limit_per_identity="1/minute", **store))
        await client.post(f"{SESSIONS}?dry_run=true", json={})
        await client.post(SESSIONS, json={"voice": 1})
        await client.post(SESSIONS, json={"voice": "robot"})
        assert (await client.post(SESSIONS, json={})).status_code == 200


class TestRedisOutage:
    """Redis killed mid-run, then restarted."""

    async def test_closed_answers_503_then_recovers(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        redis: RedisServer,
        upstream: respx.MockRouter,
    ) -> None:
        """Closed (default): while Redis is down a mint is answered 503 without reaching
        OpenAI, and without waiting for Redis to return; minting resumes after."""
        client = await client_for(
            make_settings(
                redis_url=redis.url,
                rate_limit_per_identity="100/minute",
                redis_timeout_seconds=2.0,  # the mint after the restart opens a new connection
            )
        )
        assert (await client.post(SESSIONS, json={})).status_code == 200
        redis.stop()
        down = await client.post(SESSIONS, json={})  # answered while Redis is still down
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "service_unavailable"
        assert upstream.routes["mint"].call_count == 1  # the refused mint never left
        assert (await client.get("/readyz")).status_code == 503
        redis.start()
        assert (await client.post(SESSIONS, json={})).status_code == 200
        assert (await client.get("/readyz")).json()["redis"] == "ok"

    async def test_open_mints_while_redis_is_down(
        self, client_for: ClientFor, make_settings: MakeSettings, redis: RedisServer
    ) -> None:
        """Open: mints go on without limits while Redis is unreachable."""
        client = await client_for(
            make_settings(
                redis_url=redis.url,
                rate_limit_per_identity="1/minute",
                rate_limit_on_store_error="open",
            )
        )
        redis.stop()
        assert statuses(await burst(client, 3)) == [200, 200, 200]
        assert (await client.get("/readyz")).status_code == 200


@pytest.fixture(name="link")
def fixture_link(redis: RedisServer) -> Iterator[FaultyLink]:
    """A relay to the Redis that can fail the connections that run the script."""
    link = FaultyLink(redis.port)
    yield link
    link.close()


class TestRedisRetry:
    """A dead pooled connection is retried once on a fresh one; a timeout never."""

    async def test_connection_closed_by_redis_is_retried_on_a_fresh_one(
        self, redis: RedisServer
    ) -> None:
        """After Redis closed every pooled connection, the next check succeeds and counts once."""
        store = RedisStore(redis.url, 2.0)
        try:
            await asyncio.gather(*(store.hit(QUOTA) for _ in range(3)))
            async with aioredis.Redis.from_url(redis.url) as admin:
                assert await admin.client_kill_filter(_type="normal", skipme=True) >= 1

            async def killed() -> bool:
                return not await worker_pids(redis.url)

            await eventually(killed, "Redis dropped the store's connections")
            await asyncio.gather(*(store.hit(QUOTA) for _ in range(3)))
            assert await redis_value(redis.url, QUOTA[0].key) == "6"
        finally:
            await store.aclose()

    async def test_connection_error_is_retried_at_most_once(self, link: FaultyLink) -> None:
        """A script whose connection drops is sent twice at most, then the store is unavailable."""
        store = RedisStore(f"redis://127.0.0.1:{link.port}/0", 2.0)
        try:
            await store.hit(QUOTA)
            link.mode, link.scripts = "cut", 0
            with pytest.raises(StoreUnavailable):
                await store.hit(QUOTA)
            assert link.scripts == 2
        finally:
            await store.aclose()

    async def test_demoted_primary_is_left_for_the_one_its_address_leads_to(
        self, link: FaultyLink, redis: RedisServer
    ) -> None:
        """A READONLY answer is retried on a fresh connection, which reaches the new primary."""
        store = RedisStore(f"redis://127.0.0.1:{link.port}/0", 2.0)
        with redis_server() as successor:
            try:
                await store.hit(QUOTA)
                with successor.client() as new, redis.client() as old:
                    new.replicaof("127.0.0.1", redis.port)
                    wait_until(
                        lambda: new.info("replication")["master_link_status"] == "up", 5, "sync"
                    )
                    replicated(redis)
                    new.replicaof("NO", "ONE")
                    old.replicaof("127.0.0.1", successor.port)
                link.target_port = successor.port  # as a managed Redis moves its DNS name
                await store.hit(QUOTA)
                assert await redis_value(successor.url, QUOTA[0].key) == "2"
            finally:
                await store.aclose()

    async def test_timeout_is_not_retried(self, link: FaultyLink, redis: RedisServer) -> None:
        """A script whose reply times out is not sent again: it ran, and counted once."""
        # Long enough for the first hit through the relay on a loaded machine; the swallowed
        # reply then times out after it.
        store = RedisStore(f"redis://127.0.0.1:{link.port}/0", 1.0)
        try:
            await store.hit(QUOTA)
            link.mode, link.scripts = "swallow", 0
            with pytest.raises(StoreUnavailable):
                await store.hit(QUOTA)

            async def ran() -> bool:  # the relay may still be handing the script on
                return await redis_value(redis.url, QUOTA[0].key) != "1"

            await eventually(ran, "the swallowed script ran")
            assert link.scripts == 1
            assert await redis_value(redis.url, QUOTA[0].key) == "2"
        finally:
            await store.aclose()


class TestRedisTls:
    """`rediss://`: TLS to Redis, verified against the CA that `ssl_ca_certs` names."""

    @pytest.fixture(name="tls_redis")
    def fixture_tls_redis(self, tmp_path: Path) -> Iterator[RedisServer]:
        """A redis-server that speaks TLS only, with a certificate from a throwaway CA."""
        with redis_server(make_tls_files(tmp_path)) as server:
            yield server

    async def test_limits_hold_over_tls(
        self, client_for: ClientFor, make_settings: MakeSettings, tls_redis: RedisServer
    ) -> None:
        """With `rediss://...?ssl_ca_certs=<ca file>`, limits hold and /readyz reports Redis."""
        assert tls_redis.url.startswith("rediss://")
        client = await client_for(
            make_settings(
                redis_url=tls_redis.url,
                rate_limit_per_identity="2/minute",
                # Three TLS handshakes at once can outlast 0.25 s on a loaded machine.
                redis_timeout_seconds=2.0,
            )
        )
        assert statuses(await burst(client, 3)) == [200, 200, 429]
        assert (await client.get("/readyz")).json()["redis"] == "ok"

    async def test_certificate_from_an_unknown_ca_is_refused(
        self, client_for: ClientFor, make_settings: MakeSettings, tls_redis: RedisServer
    ) -> None:
        """Without the CA the server's certificate is not trusted: 503, and /readyz unready."""
        untrusted = tls_redis.url.partition("?")[0]
        client = await client_for(
            make_settings(redis_url=untrusted, rate_limit_per_identity="2/minute")
        )
        assert (await client.post(SESSIONS, json={})).status_code == 503
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()["redis"]) == (503, "unreachable")


@pytest.fixture(name="sentinels")
def fixture_sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    """A primary, its replica and one sentinel watching them."""
    with sentinel_set(tmp_path) as servers:
        yield servers


class TestRedisSentinel:
    """`redis+sentinel://`: the limiter follows the master that Sentinel names."""

    async def test_limits_hold_across_a_failover(
        self, client_for: ClientFor, make_settings: MakeSettings, sentinels: SentinelSet
    ) -> None:
        """Primary killed (-9): 503s, never a mint, until the promoted replica refuses the 4th."""
        # Replication is asynchronous: the three mints are known to be on the replica
        # (WAIT) before the kill. Counts written just before a failover can be lost,
        # letting a caller mint a little over the limit; that is not what this tests.
        client = await client_for(
            make_settings(
                redis_url=sentinels.url,
                redis_timeout_seconds=2.0,  # counts, not latency: see fixture_store
                rate_limit_per_identity="3/hour",
            )
        )
        assert statuses(await burst(client, 3)) == [200] * 3  # three pooled connections
        replicated(sentinels.primary)
        sentinels.primary.stop()
        answers: list[int] = []

        async def refused_by_the_promoted_replica() -> bool:
            answers.append((await client.post(SESSIONS, json={})).status_code)
            return answers[-1] == 429

        await eventually(refused_by_the_promoted_replica, "the 4th mint refused after failover")
        assert sentinels.master_port() == sentinels.replica.port
        assert set(answers) <= {503, 429}  # never a mint over the limit
        assert statuses(await burst(client, 3)) == [429] * 3  # the dead ones follow at once

    async def test_demoted_master_is_left_for_the_new_one(
        self, client_for: ClientFor, make_settings: MakeSettings, sentinels: SentinelSet
    ) -> None:
        """After a failover the old master's READONLY is retried on the new master: 200, no 503."""
        client = await client_for(
            make_settings(
                redis_url=sentinels.url,
                rate_limit_per_identity="100/hour",
                redis_timeout_seconds=2.0,
            )
        )
        assert (await client.post(SESSIONS, json={})).status_code == 200
        replicated(sentinels.primary)
        with sentinels.client() as sentinel:
            sentinel.sentinel_failover(sentinels.MASTER)

        async def promoted() -> bool:
            return sentinels.master_port() == sentinels.replica.port

        await eventually(promoted, "the replica promoted")
        with sentinels.primary.client() as old:  # as Sentinel does, seconds later
            old.replicaof("127.0.0.1", sentinels.replica.port)
        assert (await client.post(SESSIONS, json={})).status_code == 200

    async def test_readyz_reports_the_master(
        self, client_for: ClientFor, make_settings: MakeSettings, sentinels: SentinelSet
    ) -> None:
        """/readyz pings the master the sentinels name."""
        client = await client_for(
            make_settings(
                redis_url=sentinels.url,
                rate_limit_per_identity="1/minute",
                redis_timeout_seconds=2.0,
            )
        )
        assert (await client.get("/readyz")).json()["redis"] == "ok"

    async def test_unreachable_sentinel_is_skipped(
        self, client_for: ClientFor, make_settings: MakeSettings, sentinels: SentinelSet
    ) -> None:
        """A sentinel listed first but down does not stop minting: the next one answers."""
        url = sentinels.url.replace("://", f"://127.0.0.1:{free_port()},", 1)
        client = await client_for(
            make_settings(
                redis_url=url, rate_limit_per_identity="1/minute", redis_timeout_seconds=2.0
            )
        )
        assert statuses(await burst(client, 2)) == [200, 429]

    async def test_sentinels_and_master_over_tls(
        self, client_for: ClientFor, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """`rediss+sentinel://` speaks TLS to the sentinels and the master, trusting the CA."""
        with sentinel_set(tmp_path, make_tls_files(tmp_path)) as servers:
            assert servers.url.startswith("rediss+sentinel://")
            client = await client_for(
                make_settings(
                    redis_url=servers.url,
                    rate_limit_per_identity="1/minute",
                    redis_timeout_seconds=2.0,
                )
            )
            assert statuses(await burst(client, 2)) == [200, 429]
            assert (await client.get("/readyz")).json()["redis"] == "ok"

    async def test_sentinel_password_reaches_the_sentinels(
        self, client_for: ClientFor, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """Sentinels that require a password are asked with `?sentinel_password=`."""
        with sentinel_set(tmp_path, password="sentinel-pass") as servers:
            assert "sentinel_password=sentinel-pass" in servers.url
            client = await client_for(
                make_settings(
                    redis_url=servers.url,
                    rate_limit_per_identity="1/minute",
                    redis_timeout_seconds=2.0,
                )
            )
            assert statuses(await burst(client, 2)) == [200, 429]


class TestRedisUrl:
    """REDIS_URL forms, read at start-up."""

    def test_sentinel_url_is_read_whole(self, make_settings: MakeSettings) -> None:
        """Sentinels, master name, db, both passwords and the CA file all come from the URL."""
        url = (
            "rediss+sentinel://app:p%40ss@10.0.0.1:26379,[::1]:26380/mymaster/2"
            "?ssl_ca_certs=/ca&sentinel_password=s%26p"
        )
        assert make_settings(redis_url=url).redis_url == url
        assert parse_sentinel_url(url) == SentinelUrl(
            sentinels=(("10.0.0.1", 26379), ("::1", 26380)),
            master="mymaster",
            db=2,
            username="app",
            password="p@ss",
            tls=True,
            ca_file="/ca",
            sentinel_password="s&p",
        )

    @pytest.mark.parametrize(
        "url",
        [
            "redis+cluster://10.0.0.1:7000",
            "redis+sentinel://:hunter2@10.0.0.1/mymaster",
            "redis+sentinel://:hunter2@10.0.0.1:26379",
            "redis+sentinel://:hunter2@10.0.0.1:26379/mymaster?socket_timeout=9",
            "redis+sentinel://:hunter2@10.0.0.1:26379/mymaster?ssl_ca_certs=/ca",
            "redis://:hunter2@10.0.0.1:6379/0?retry_on_timeout=true",
            "redis://:hunter2@10.0.0.1:port/0",
        ],
    )
    def test_unusable_url_is_refused_without_echoing_it(
        self, make_settings: MakeSettings, url: str
    ) -> None:
        """A URL the store cannot use stops start-up, naming REDIS_URL but not the password."""
        with pytest.raises(ValidationError) as refused:
            make_settings(redis_url=url)
        message = describe(refused.value)
        assert "REDIS_URL" in message
        assert "hunter2" not in message


class TestWorkers:
    """WORKERS=2 processes share one limit through Redis."""

    def test_two_workers_share_one_limit_exactly(self, redis: RedisServer) -> None:
        """12 concurrent mints against 2 workers with 7/minute give exactly 7 successes."""
        service = ServiceProcess(
            {
                "AUTH_MODE": "none",
                "UPSTREAM_EMULATOR": "true",
                "WORKERS": "2",
                "REDIS_URL": redis.url,
                "RATE_LIMIT_PER_IDENTITY": "7/minute",
                "REDIS_TIMEOUT_SECONDS": "2",  # counts, not latency: see fixture_store
                "LOG_LEVEL": "WARNING",
            }
        )
        try:
            service.wait_ready()

            async def run() -> list[int]:
                limits = httpx.Limits(max_connections=12, max_keepalive_connections=0)
                async with httpx.AsyncClient(base_url=service.url, limits=limits) as client:
                    return statuses(await burst(client, 12))

            assert asyncio.run(run()) == [200] * 7 + [429] * 5
        finally:
            assert service.stop() == 0

    def test_two_workers_mint_at_once_after_redis_restarts(self, redis: RedisServer) -> None:
        """Redis restarted under 2 workers holding pooled connections: no mint answers 503."""
        service = ServiceProcess(
            {
                "AUTH_MODE": "none",
                "UPSTREAM_EMULATOR": "true",
                "WORKERS": "2",
                "REDIS_URL": redis.url,
                "RATE_LIMIT_PER_IDENTITY": "1000/minute",
                "REDIS_TIMEOUT_SECONDS": "2",  # new connections on a loaded machine
                "RATE_LIMIT_ON_STORE_ERROR": "closed",
                "LOG_LEVEL": "WARNING",
            }
        )

        async def mints(count: int) -> list[int]:
            limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=service.url, limits=limits) as client:
                return statuses(await burst(client, count))

        try:
            service.wait_ready()
            for _ in range(20):  # until both workers hold pooled connections
                assert asyncio.run(mints(8)) == [200] * 8
                if len(asyncio.run(worker_pids(redis.url))) == 2:
                    break
            assert len(asyncio.run(worker_pids(redis.url))) == 2
            redis.stop()
            redis.start()
            with redis.client() as admin:  # back, and answering (not only listening)
                wait_until(lambda: bool(admin.ping()), 10, "restarted Redis answers PING")
            after: list[int] = []
            for _ in range(20):  # until both workers have minted on their stale pools
                after += asyncio.run(mints(8))
                if len(asyncio.run(worker_pids(redis.url))) == 2:
                    break
            assert len(asyncio.run(worker_pids(redis.url))) == 2
            assert after == [200] * len(after)
        finally:
            assert service.stop() == 0
