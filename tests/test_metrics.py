"""GET /metrics: Prometheus counters for mints, violations, upstream and limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import respx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ClientFor, MakeSettings
from tests.paths import (
    CLIENT_SECRETS,
    SESSIONS,
    TRANSCRIPTION_SESSIONS,
    TRANSLATION_CLIENT_SECRETS,
)
from tests.servers import RedisServer, ServiceProcess, free_port, redis_server

pytestmark = pytest.mark.anyio


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and all(item.labels.get(k) == v for k, v in labels.items()):
                return float(item.value)
    return 0.0


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


class TestMetrics:
    """Counters move with what happens."""

    async def test_mints_counted_by_endpoint_and_outcome(self, client: httpx.AsyncClient) -> None:
        """A mint, a dry run and a policy refusal each count under their outcome."""
        before = await scrape(client)
        await client.post(SESSIONS, json={})
        await client.post(f"{CLIENT_SECRETS}?dry_run=true", json={})
        await client.post(SESSIONS, json={"voice": "robot"})
        after = await scrape(client)
        for endpoint, outcome in [
            ("sessions", "minted"),
            ("client_secrets", "dry_run"),
            ("sessions", "policy_violation"),
        ]:
            delta = sample(after, "rtp_mints_total", endpoint=endpoint, outcome=outcome) - sample(
                before, "rtp_mints_total", endpoint=endpoint, outcome=outcome
            )
            assert delta == 1, (endpoint, outcome)

    async def test_transcription_and_translation_mints_are_counted(
        self, client: httpx.AsyncClient
    ) -> None:
        """The transcription and translation doors count under their own endpoint labels."""
        before = await scrape(client)
        await client.post(TRANSCRIPTION_SESSIONS, json={})
        await client.post(
            TRANSLATION_CLIENT_SECRETS, json={"session": {"model": "gpt-realtime-translate"}}
        )
        after = await scrape(client)
        for endpoint in ("transcription_sessions", "translation_client_secrets"):
            delta = sample(after, "rtp_mints_total", endpoint=endpoint, outcome="minted") - sample(
                before, "rtp_mints_total", endpoint=endpoint, outcome="minted"
            )
            assert delta == 1, endpoint

    async def test_violations_counted_by_field(self, client: httpx.AsyncClient) -> None:
        """Each violating field is counted."""
        before = sample(await scrape(client), "rtp_policy_violations_total", field="voice")
        await client.post(SESSIONS, json={"voice": "robot"})
        after = sample(await scrape(client), "rtp_policy_violations_total", field="voice")
        assert after - before == 1

    async def test_upstream_latency_and_errors(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Successful mints feed the latency histogram; failures count by kind."""
        before = await scrape(client)
        await client.post(SESSIONS, json={})
        upstream.routes["mint"].mock(return_value=httpx.Response(401))
        await client.post(SESSIONS, json={})
        after = await scrape(client)
        assert (
            sample(after, "rtp_upstream_latency_seconds_count")
            - sample(before, "rtp_upstream_latency_seconds_count")
        ) == 1
        assert (
            sample(after, "rtp_upstream_errors_total", kind="upstream_auth_failed")
            - sample(before, "rtp_upstream_errors_total", kind="upstream_auth_failed")
        ) == 1

    async def test_rate_limit_rejections(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A caller refused by a limit is counted."""
        client = await client_for(make_settings(rate_limit_per_identity="1/hour"))
        before = sample(await scrape(client), "rtp_rate_limited_total", source="caller")
        await client.post(SESSIONS, json={})
        await client.post(SESSIONS, json={})
        after = sample(await scrape(client), "rtp_rate_limited_total", source="caller")
        assert after - before == 1

    async def test_in_flight_gauge_is_exposed(self, client: httpx.AsyncClient) -> None:
        """The scrape itself is a request in flight."""
        assert sample(await scrape(client), "rtp_requests_in_flight") >= 1

    async def test_metrics_can_be_disabled(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """METRICS_ENABLED=false removes the endpoint."""
        client = await client_for(make_settings(metrics_enabled=False))
        assert (await client.get("/metrics")).status_code == 404

    async def test_separate_port_keeps_metrics_off_the_api(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """With METRICS_PORT set, the API port does not serve /metrics."""
        client = await client_for(make_settings(metrics_port=9999))
        assert (await client.get("/metrics")).status_code == 404


class TestMultiprocess:
    """WORKERS=2 (with the shared store they need): a scrape sums every worker."""

    @pytest.fixture(name="redis")
    def fixture_redis(self) -> Iterator[RedisServer]:
        """A real redis-server for the workers to share."""
        with redis_server() as server:
            yield server

    def test_two_workers_sum_on_the_metrics_port(self, redis: RedisServer) -> None:
        """Mints served by either worker all show in one scrape of METRICS_PORT."""
        metrics_port = free_port()
        service = ServiceProcess(
            {
                "AUTH_MODE": "none",
                "UPSTREAM_EMULATOR": "true",
                "WORKERS": "2",
                "REDIS_URL": redis.url,
                "METRICS_PORT": str(metrics_port),
            }
        )
        try:
            service.wait_ready()

            async def run() -> None:
                limits = httpx.Limits(max_keepalive_connections=0)
                async with httpx.AsyncClient(base_url=service.url, limits=limits) as client:
                    await asyncio.gather(*(client.post(SESSIONS, json={}) for _ in range(20)))

            asyncio.run(run())
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            assert sample(text, "rtp_mints_total", endpoint="sessions", outcome="minted") == 20
            assert httpx.get(f"{service.url}/metrics", timeout=5).status_code == 404
        finally:
            assert service.stop() == 0
