"""The Redis store: the shared state of every worker and replica, one round trip per use.

Each use is one Lua script (EVALSHA, loaded once; `redis_scripts`) or one
command, atomic on Redis's own clock: a mint's limits are read, decided and
committed only if every limit allows. Connect and read timeouts are short,
so an unreachable Redis is reported at once (`StoreUnavailable`) instead of
stalling mints.

Retries: a pooled connection that Redis closed (a restart, a failover, an idle
reap) is found dead only when a command fails on it; redis-py 8.1's pool no
longer notices the closed socket at checkout under RESP3 (redis/redis-py#4252).
So a command that fails with `ConnectionError` is sent once more, at once, on a
fresh connection: the first mint after Redis returns succeeds. Never more than
once, and never after a timeout: a timed-out script may have run, and running
it again would count one mint twice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.maint_notifications import MaintNotificationsConfig

from service.core.clock import DAY_MS
from service.core.env_values import SENTINEL_SCHEMES, parse_sentinel_url
from service.store import redis_scripts as lua
from service.store.base import Limit, StoreUnavailable

T = TypeVar("T")
UPDATE_CHUNK = 500
"""Records per `update_existing` script run: Redis runs a script to its end, so a pass
over thousands of calls never holds it for one long write."""


def retry_a_dead_connection() -> Retry:
    """One immediate retry on a fresh connection after `ConnectionError`; none on timeouts.

    redis-py's `TimeoutError` is not a `ConnectionError`, so it is never retried.
    READONLY counts as a dead connection: the server was demoted to a replica
    behind an address that now leads to the new primary (a managed Redis's
    failover), and the script wrote nothing there, since its first write failed.
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError, ReadOnlyError))


class RedisStore:
    """Every interface of `service.store.Store` in Redis: fail-fast timeouts, one retry."""

    def __init__(self, url: str, timeout: float) -> None:
        self._timeout = timeout
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "retry": retry_a_dead_connection(),
            "health_check_interval": 0,
            # No CLIENT MAINT_NOTIFICATIONS probe: one round trip less per new
            # connection, for a feature only Redis Enterprise/Cloud offers.
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
            # CLIENT LIST shows which worker holds which connection.
            "client_name": f"realtime-token-proxy:{os.getpid()}",
        }
        self._sentinel: Sentinel | None = None
        if url.startswith(SENTINEL_SCHEMES):
            self._sentinel, self._redis = _sentinel_master(url, options)
        else:
            self._redis = aioredis.Redis.from_url(url, **options)
        self._script = self._redis.register_script(lua.HIT)
        script = self._redis.register_script
        self._add, self._reserve, self._occupancy = (
            script(lua.ADD),
            script(lua.RESERVE),
            script(lua.OCCUPANCY),
        )
        self._missing, self._restore = script(lua.MISSING), script(lua.RESTORE)
        self._members = script(lua.MEMBERS)
        self._update = script(lua.UPDATE)
        self._hold = script(lua.HOLD)
        self._claim, self._renew, self._release, self._orphans = (
            script(lua.CLAIM),
            script(lua.RENEW),
            script(lua.RELEASE),
            script(lua.ORPHANS),
        )

    async def hit(self, limits: Sequence[Limit]) -> tuple[int, list[tuple[int, int]]]:
        """Run the script; `StoreUnavailable` within twice the timeout, the retry included."""
        args: list[int | str] = [DAY_MS]
        for limit in limits:
            args += ["r" if limit.kind == "rate" else "q", limit.count, limit.period_ms]
        raw = await self._command(self._script(keys=[limit.key for limit in limits], args=args))
        values = [int(v) for v in raw]
        return values[0], [(values[i], values[i + 1]) for i in range(1, len(values), 2)]

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        """SET with PX; a retry after a dead connection is harmless (the same value again)."""
        await self._command(self._redis.set(key, value, px=max(1, ttl_ms)))

    async def put_if_absent(self, key: str, value: str, ttl_ms: int) -> bool:
        """SET NX PX. A retry after a dead connection whose first attempt did write finds
        the key taken: `CallRecords.create` tells its own value from another's."""
        return bool(await self._command(self._redis.set(key, value, px=max(1, ttl_ms), nx=True)))

    async def get(self, key: str) -> str | None:
        raw = await self._command(self._redis.get(key))
        return raw.decode() if isinstance(raw, bytes) else None

    async def delete(self, key: str) -> None:
        await self._command(self._redis.delete(key))

    async def update_existing(self, values: Mapping[str, str], ttl_ms: int) -> None:
        """SET XX PX for each, `UPDATE_CHUNK` to a script run; a retry writes the same values
        again (harmless).

        One script, not a pipeline of SETs: a keeper pass rewrites thousands of
        records, and the pipeline's per-command work cost the worker five times the
        CPU (36 ms against 7 for 2,000 records of 3 KB, measured).
        """
        items = list(values.items())
        for start in range(0, len(items), UPDATE_CHUNK):
            chunk = items[start : start + UPDATE_CHUNK]
            keys = [key for key, _ in chunk]
            args: list[str | int] = [max(1, ttl_ms), *(value for _, value in chunk)]
            await self._command(self._update(keys=keys, args=args))

    async def missing(self, keys: Sequence[str]) -> list[str]:
        if not keys:
            return []
        raw = await self._command(self._missing(keys=list(keys)))
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        raw = await self._command(self._redis.mget(list(keys)))
        return [value.decode() if isinstance(value, bytes) else None for value in raw]

    async def restore(self, key: str, member: str, ttl_ms: int) -> None:
        await self._command(self._restore(keys=[key], args=[member, max(1, ttl_ms)]))

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        keys = list(increments)
        raw = await self._command(self._add(keys=keys, args=[ttl_ms, *increments.values()]))
        return {key: int(value) for key, value in zip(keys, raw, strict=True)}

    async def counts(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        raw = await self._command(self._redis.mget(list(keys)))
        return [int(value) if value is not None else 0 for value in raw]

    async def hold(
        self, checks: Sequence[tuple[str, int]], holds: Mapping[str, int], ttl_ms: int
    ) -> str | None:
        keys = [key for key, _ in checks] + list(holds)
        args = [len(checks), ttl_ms, *(limit for _, limit in checks), *holds.values()]
        refused = int(await self._command(self._hold(keys=keys, args=args)))
        return checks[refused - 1][0] if refused else None

    async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
        args: list[str | int] = [member, limit, ttl_ms]
        return bool(await self._command(self._reserve(keys=[key], args=args)))

    async def unreserve(self, key: str, member: str) -> None:
        await self._command(self._redis.zrem(key, member))

    async def occupancy(self, key: str) -> int:
        return int(await self._command(self._occupancy(keys=[key])))

    async def members(self, key: str) -> list[str]:
        raw = await self._command(self._members(keys=[key]))
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]

    async def claim(self, member: str, owner: str, ttl_ms: int) -> bool:
        args: list[str | int] = [member, owner, ttl_ms]
        return bool(await self._command(self._claim(keys=[lua.LEASES, lua.OWNERS], args=args)))

    async def renew(self, members: Sequence[str], owner: str, ttl_ms: int) -> list[str]:
        if not members:
            return []
        raw = await self._command(
            self._renew(keys=[lua.LEASES, lua.OWNERS], args=[owner, ttl_ms, *members])
        )
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]

    async def release(self, members: Sequence[str], owner: str) -> None:
        if members:
            await self._command(
                self._release(keys=[lua.LEASES, lua.OWNERS], args=[owner, *members])
            )

    async def drop(self, member: str) -> None:
        async def both() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(lua.LEASES, member)
                pipe.hdel(lua.OWNERS, member)
                await pipe.execute()

        await self._command(both())

    async def orphans(self, limit: int) -> list[str]:
        raw = await self._command(self._orphans(keys=[lua.LEASES], args=[limit]))
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]

    async def _command(self, pending: Awaitable[T]) -> T:
        """Await one command within twice the timeout; any failure is `StoreUnavailable`.

        A cancellation that arrives while the command runs is raised, also when the
        command finished anyway: with a socket timeout redis-py writes through
        `asyncio.wait_for`, which on Python 3.11 returns a result that completed as
        its task was cancelled and loses the cancellation (bpo-42130, fixed in
        3.12). Lost, it left a call's task running after `Supervisor.stop`
        cancelled it, and the stop waiting on it for good.
        """
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(self._timeout * 2):
                result = await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(type(exc).__name__) from None
        if task is not None and task.cancelling() > cancelling:
            raise asyncio.CancelledError
        return result

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout * 2):
                return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()


class MasterConnection(SentinelManagedConnection):
    """A connection to the master Sentinel names now, also when a retry reconnects it.

    redis-py's own reconnects inside a retry to the address it last had, which
    after a failover is the old master (redis/redis-py#3874): asking the
    sentinels again makes the one retry land on the new master.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            # Asks the sentinels where the master is; redis-py leaves connect() unannotated.
            await self.connect()  # type: ignore[no-untyped-call]
        await super().send_packed_command(command, check_health)


class MasterSSLConnection(MasterConnection, SSLConnection):
    """`MasterConnection` over TLS (`rediss+sentinel://`)."""


def _sentinel_master(url: str, options: dict[str, Any]) -> tuple[Sentinel, aioredis.Redis]:
    """The sentinels of a `redis+sentinel://` URL, and a client of the master they name.

    Each new connection asks the sentinels where the master is, so after a
    failover the retry above lands on the new master (a demoted master's
    READONLY answer counts as a dead connection too). The sentinels get the same
    short timeouts and the same one retry: finding the master stays fail-fast.
    """
    target = parse_sentinel_url(url)
    tls = {"ssl": True, "ssl_ca_certs": target.ca_file} if target.tls else {}
    sentinel_auth = {"password": target.sentinel_password} if target.sentinel_password else {}
    # redis-py leaves Sentinel.__init__ unannotated.
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={**options, **tls, **sentinel_auth},
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
        **tls,
    )
    connection = MasterSSLConnection if target.tls else MasterConnection
    master: aioredis.Redis = sentinel.master_for(target.master, connection_class=connection)
    return sentinel, master
