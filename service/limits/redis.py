"""The Redis rate-limit store: every limit of a mint in one atomic round trip.

One Lua script (EVALSHA, loaded once) reads the GCRA timestamps and quota
counters, decides, and commits only if every limit allows, on Redis's own
clock. Connect and read timeouts are short, so an unreachable Redis is
reported at once (`StoreUnavailable`) instead of stalling mints.

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

from service.env_values import SENTINEL_SCHEMES, parse_sentinel_url
from service.limits.store import Limit, StoreUnavailable

T = TypeVar("T")

# KEYS: one per limit. ARGV: unused slot, then per limit: kind ("r"|"q"), count, period_ms.
# Time is Redis's own clock, so every worker and replica agrees on it, and concurrent
# requests are ordered by their arrival at Redis. A quota expires at the end of the UTC day.
# Returns {retry_after_ms, remaining_1, reset_ms_1, remaining_2, reset_ms_2, ...}.
LUA_HIT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local retry = 0
local out = {}
local commits = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[i * 3 - 1]
  local count = tonumber(ARGV[i * 3])
  local period = tonumber(ARGV[i * 3 + 1])
  local stored = tonumber(redis.call('GET', key) or '0')
  if kind == 'r' then
    local interval = period / count
    local tat = math.max(stored, now)
    if tat - now > period - interval then
      retry = math.max(retry, math.ceil(tat - now - (period - interval)))
      out[#out + 1] = 0
      out[#out + 1] = math.ceil(tat - now)
    else
      local new_tat = tat + interval
      commits[#commits + 1] = {key, 'r', new_tat, new_tat - now}
      out[#out + 1] = math.floor((period - (new_tat - now)) / interval)
      out[#out + 1] = new_tat - now
    end
  else
    period = 86400000 - (now % 86400000)
    if stored >= count then retry = math.max(retry, period) end
    commits[#commits + 1] = {key, 'q', 0, period}
    out[#out + 1] = math.max(0, count - stored - 1)
    out[#out + 1] = period
  end
end
if retry == 0 then
  for _, c in ipairs(commits) do
    if c[2] == 'r' then
      -- Microsecond precision: rounding to whole ms per step would tighten the limit.
      redis.call('SET', c[1], string.format('%.3f', c[3]), 'PX', math.max(1, math.ceil(c[4])))
    elseif redis.call('INCR', c[1]) == 1 then
      redis.call('PEXPIRE', c[1], c[4])
    end
  end
end
table.insert(out, 1, retry)
return out
"""


LEASES = "rtp:calls:leases"
"""ZSET: supervised call -> lease expiry (ms, Redis's clock)."""
OWNERS = "rtp:calls:owners"
"""HASH: supervised call -> the worker holding its lease."""

# Redis's clock for every lease, so that workers on different hosts agree.
LUA_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
LUA_ADD = """
local out = {}
for i, key in ipairs(KEYS) do
  local total = redis.call('INCRBY', key, ARGV[i + 1])
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
  out[i] = total
end
return out
"""
LUA_RESERVE = (
    LUA_NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('PEXPIREAT', KEYS[1], math.max(expires, redis.call('PTTL', KEYS[1]) + now))
return 1
"""
)
LUA_OCCUPANCY = (
    LUA_NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)
LUA_CLAIM = (
    LUA_NOW
    + """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if expires and tonumber(expires) > now and holder and holder ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
)
LUA_RENEW = (
    LUA_NOW
    + """
local lost = {}
for i = 3, #ARGV do
  local holder = redis.call('HGET', KEYS[2], ARGV[i])
  if holder == ARGV[1] or not holder then
    -- Ours, or never written (the store was down at creation): take it now.
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[1])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)
LUA_RELEASE = """
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
  end
end
return 1
"""
LUA_ORPHANS = (
    LUA_NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])
"""
)


def retry_a_dead_connection() -> Retry:
    """One immediate retry on a fresh connection after `ConnectionError`; none on timeouts.

    redis-py's `TimeoutError` is not a `ConnectionError`, so it is never retried.
    READONLY counts as a dead connection: the server was demoted to a replica
    behind an address that now leads to the new primary (a managed Redis's
    failover), and the script wrote nothing there, since its first write failed.
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError, ReadOnlyError))


class RedisStore:
    """Shared limits in Redis: one EVALSHA per check, fail-fast timeouts, one retry."""

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
        self._script = self._redis.register_script(LUA_HIT)
        script = self._redis.register_script
        self._add, self._reserve, self._occupancy = (
            script(LUA_ADD),
            script(LUA_RESERVE),
            script(LUA_OCCUPANCY),
        )
        self._claim, self._renew, self._release, self._orphans = (
            script(LUA_CLAIM),
            script(LUA_RENEW),
            script(LUA_RELEASE),
            script(LUA_ORPHANS),
        )

    async def hit(self, limits: list[Limit], now_ms: int) -> tuple[int, list[tuple[int, int]]]:
        """Run the script; `StoreUnavailable` within twice the timeout, the retry included."""
        args: list[int | str] = [now_ms]
        for limit in limits:
            args += ["r" if limit.kind == "rate" else "q", limit.count, limit.period_ms]
        raw = await self._command(self._script(keys=[limit.key for limit in limits], args=args))
        values = [int(v) for v in raw]
        return values[0], [(values[i], values[i + 1]) for i in range(1, len(values), 2)]

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        """SET with PX; a retry after a dead connection is harmless (the same value again)."""
        await self._command(self._redis.set(key, value, px=max(1, ttl_ms)))

    async def get(self, key: str) -> str | None:
        raw = await self._command(self._redis.get(key))
        return raw.decode() if isinstance(raw, bytes) else None

    async def delete(self, key: str) -> None:
        await self._command(self._redis.delete(key))

    async def add(self, increments: Mapping[str, int], ttl_ms: int) -> dict[str, int]:
        keys = list(increments)
        raw = await self._command(self._add(keys=keys, args=[ttl_ms, *increments.values()]))
        return {key: int(value) for key, value in zip(keys, raw, strict=True)}

    async def counts(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        raw = await self._command(self._redis.mget(list(keys)))
        return [int(value) if value is not None else 0 for value in raw]

    async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
        args: list[str | int] = [member, limit, ttl_ms]
        return bool(await self._command(self._reserve(keys=[key], args=args)))

    async def unreserve(self, key: str, member: str) -> None:
        await self._command(self._redis.zrem(key, member))

    async def occupancy(self, key: str) -> int:
        return int(await self._command(self._occupancy(keys=[key])))

    async def claim(self, member: str, owner: str, ttl_ms: int) -> bool:
        args: list[str | int] = [member, owner, ttl_ms]
        return bool(await self._command(self._claim(keys=[LEASES, OWNERS], args=args)))

    async def renew(self, members: Sequence[str], owner: str, ttl_ms: int) -> list[str]:
        if not members:
            return []
        raw = await self._command(
            self._renew(keys=[LEASES, OWNERS], args=[owner, ttl_ms, *members])
        )
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]

    async def release(self, members: Sequence[str], owner: str) -> None:
        if members:
            await self._command(self._release(keys=[LEASES, OWNERS], args=[owner, *members]))

    async def drop(self, member: str) -> None:
        async def both() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(LEASES, member)
                pipe.hdel(OWNERS, member)
                await pipe.execute()

        await self._command(both())

    async def orphans(self, limit: int) -> list[str]:
        raw = await self._command(self._orphans(keys=[LEASES], args=[limit]))
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]

    async def _command(self, pending: Awaitable[T]) -> T:
        """Await one command within twice the timeout; any failure is `StoreUnavailable`."""
        try:
            async with asyncio.timeout(self._timeout * 2):
                return await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(type(exc).__name__) from None

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
