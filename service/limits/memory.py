"""The in-process store: exact for one process, swept so that it stays bounded."""

from __future__ import annotations

import math
import time

from service.limits.store import Limit, evaluate_gcra


class MemoryStore:
    """Exact for one process: the event loop serialises every check."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, int]] = {}
        self._records: dict[str, tuple[str, int]] = {}
        self._ops = 0

    async def hit(self, limits: list[Limit], now_ms: int) -> tuple[int, list[tuple[int, int]]]:
        self._sweep(now_ms)
        retry, results, updates = 0, [], []
        for limit in limits:
            value, expires = self._values.get(limit.key, (0.0, 0))
            if expires <= now_ms:
                value = 0.0
            if limit.kind == "rate":
                wait, remaining, new_tat = evaluate_gcra(
                    value, now_ms, limit.count, limit.period_ms
                )
                updates.append((limit.key, (new_tat, math.ceil(new_tat))))
                results.append((remaining, math.ceil(new_tat - now_ms)))
            else:
                wait = limit.period_ms if value >= limit.count else 0
                updates.append((limit.key, (value + 1, now_ms + limit.period_ms)))
                results.append((max(0, limit.count - int(value) - 1), limit.period_ms))
            retry = max(retry, wait)
        if retry == 0:
            self._values.update(updates)
        return retry, results

    def _sweep(self, now_ms: int) -> None:
        self._ops += 1
        if self._ops % self.SWEEP_EVERY == 0:
            self._values = {k: v for k, v in self._values.items() if v[1] > now_ms}
            self._records = {k: v for k, v in self._records.items() if v[1] > now_ms}

    async def put(self, key: str, value: str, ttl_ms: int) -> None:
        now_ms = int(time.time() * 1000)
        self._sweep(now_ms)
        self._records[key] = (value, now_ms + ttl_ms)

    async def get(self, key: str) -> str | None:
        value, expires = self._records.get(key, ("", 0))
        return value if expires > int(time.time() * 1000) else None

    async def delete(self, key: str) -> None:
        self._records.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
