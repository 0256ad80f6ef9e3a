"""Callers an operator stopped: suspended ones, and those whose live calls were ended.

Both live in the shared store, so every worker and replica acts on them:

- a **suspension** (`rtp:suspended:<caller>`) holds until its time and then
  expires on its own; meanwhile the caller's mints and calls get 403
  `caller_suspended` (`Limiter.check`);
- an **ending** (`rtp:ended:<caller>`) is the time an operator ended a
  caller's live calls (a suspension ends them too): each worker's keeper
  pass hangs up its calls of that caller started before it
  (`service.calls.supervisor`), so every call goes within one pass wherever
  it is supervised, and a call started afterwards is not touched. It is kept
  as long as a call may last.

A caller is named as audit lines name them (`caller_tag`: the identity, or
its hash with `AUTH_HASH_IDENTITIES`), since that is the name an operator
reads; keys hold a hash of it, never the name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from service.core.clock import Clock
from service.core.errors import Suspended
from service.store import Records

ENDING_SLACK_MS = 60_000
"""An ending outlives the longest call by this much, as a live-call slot does."""


def _key_part(caller: str) -> str:
    return hashlib.blake2b(caller.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Suspension:
    """Until when a caller is suspended, and by which operator."""

    until_ms: int
    by: str


class Suspensions:
    """Suspensions and endings of callers, in the shared store."""

    def __init__(self, records: Records, clock: Clock, call_max_seconds: int) -> None:
        self._records = records
        self._clock = clock
        self._ending_ttl_ms = call_max_seconds * 1000 + ENDING_SLACK_MS

    @staticmethod
    def _suspended_key(caller: str) -> str:
        return f"rtp:suspended:{_key_part(caller)}"

    @staticmethod
    def _ended_key(caller: str) -> str:
        return f"rtp:ended:{_key_part(caller)}"

    def _keys(self, caller: str) -> tuple[str, str]:
        return self._ended_key(caller), self._suspended_key(caller)

    async def suspend(self, caller: str, seconds: int, by: str) -> Suspension:
        """Suspend `caller` for `seconds`, and end their live calls."""
        now = self._clock()
        suspension = Suspension(now + seconds * 1000, by)
        value = orjson.dumps({"until_ms": suspension.until_ms, "by": by}).decode()
        await self._records.put(self._suspended_key(caller), value, seconds * 1000)
        await self.end_calls(caller)
        return suspension

    async def lift(self, caller: str) -> bool:
        """Lift `caller`'s suspension; whether there was one."""
        key = self._suspended_key(caller)
        had = await self._records.get(key) is not None
        await self._records.delete(key)
        return had

    async def suspension(self, caller: str) -> Suspension | None:
        """`caller`'s suspension now, if any."""
        raw = await self._records.get(self._suspended_key(caller))
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            return Suspension(int(data["until_ms"]), str(data["by"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # Not ours (a foreign value): a key under our prefix still means suspended.
            return Suspension(self._clock(), "unknown")

    async def refuse_if_suspended(self, caller: str) -> None:
        """403 `caller_suspended` while `caller` is suspended."""
        suspension = await self.suspension(caller)
        if suspension is None:
            return
        seconds = max(1, -(-(suspension.until_ms - self._clock()) // 1000))
        raise Suspended(
            "This caller is suspended by the service's operator; "
            f"retry in {seconds} seconds or contact them.",
            headers={"Retry-After": str(seconds)},
        )

    async def end_calls(self, caller: str) -> None:
        """Have every worker hang up `caller`'s calls started until now (their next pass)."""
        now = self._clock()
        await self._records.put(self._ended_key(caller), str(now), self._ending_ttl_ms)

    async def endings(self, callers: Sequence[str]) -> dict[str, float]:
        """Of `callers`, those whose calls must end: the time before which their calls
        started go (infinity while suspended: all of them), in one round trip."""
        unique = list(dict.fromkeys(callers))
        keys = [
            key
            for caller in unique
            for key in (self._ended_key(caller), self._suspended_key(caller))
        ]
        values = await self._records.get_many(keys)
        endings: dict[str, float] = {}
        for index, caller in enumerate(unique):
            ended, suspended = values[2 * index], values[2 * index + 1]
            if suspended is not None:
                endings[caller] = math.inf
            elif ended is not None and ended.isdigit():
                endings[caller] = int(ended)
        return endings
