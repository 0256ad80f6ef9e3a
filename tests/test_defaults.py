"""The default configuration holds every number ops write down, as a real process.

Without REDIS_URL the service runs one worker (each worker would otherwise
count its own limits), and refuses WORKERS>1: `python -m service` with
nothing but a key, as an operator first starts it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.paths import CLIENT_SECRETS
from tests.servers import STARTUP_GUARD, ServiceProcess

BASE = {"AUTH_MODE": "none", "UPSTREAM_EMULATOR": "true", "LOG_FORMAT": "json"}


def statuses(service: ServiceProcess, count: int) -> list[int]:
    """`count` mints at once, each on its own connection (as many clients would)."""

    async def run() -> list[int]:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post(CLIENT_SECRETS, json={}) for _ in range(count))
            )
        return sorted(answer.status_code for answer in answers)

    return asyncio.run(run())


class TestDefaults:
    """`python -m service` with nothing else set."""

    @pytest.mark.parametrize(
        "limit", [{"RATE_LIMIT_PER_IP": "2/minute"}, {"QUOTA_MINTS_PER_DAY": "2"}]
    )
    def test_a_limit_of_two_mints_exactly_two_of_five(self, limit: dict[str, str]) -> None:
        """Five mints at once, a limit of two: two minted, three refused, on any machine."""
        service = ServiceProcess({**BASE, **limit})
        try:
            service.wait_ready()
            assert statuses(service, 5) == [200, 200, 429, 429, 429]
        finally:
            assert service.stop() == 0

    def test_several_workers_without_redis_do_not_start(self) -> None:
        """WORKERS=2 and no REDIS_URL: exit 2, naming both variables."""
        service = ServiceProcess({**BASE, "WORKERS": "2"})
        code = service.process.wait(timeout=STARTUP_GUARD)
        output = service.log_path.read_text()
        assert code == 2, output
        assert "WORKERS=2 needs REDIS_URL" in output
