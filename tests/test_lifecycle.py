"""Graceful shutdown: unready at once on SIGTERM, in-flight mints finish, exit 0."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from service.api import create_app
from tests.conftest import MakeSettings, serving
from tests.paths import SESSIONS
from tests.servers import ServiceProcess, free_port

pytestmark = pytest.mark.anyio


class TestDraining:
    """Readiness during shutdown."""

    async def test_readyz_turns_unready_on_sigterm(self, make_settings: MakeSettings) -> None:
        """The first SIGTERM makes /readyz answer 503 while requests still drain."""
        app = create_app(make_settings())
        async with serving(app) as client:
            assert (await client.get("/readyz")).status_code == 200
            os.kill(os.getpid(), signal.SIGTERM)  # the handler only marks draining here
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "draining"
            assert (await client.get("/healthz")).status_code == 200


class TestSigterm:
    """A real process receiving SIGTERM with a mint in flight."""

    def test_in_flight_mint_finishes_and_process_exits_0(self) -> None:
        """The mint started before SIGTERM completes with a secret; the process exits 0."""
        upstream_port = free_port()
        emulator = ServiceProcess(
            {"PORT": str(upstream_port)},
            args=("emulator", "--port", str(upstream_port), "--latency-ms", "1500"),
        )
        service = ServiceProcess(
            {
                "AUTH_MODE": "none",
                "OPENAI_API_KEY": "sk-test-lifecycle-not-a-key",
                "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
                "WORKERS": "1",
                "SHUTDOWN_GRACE_SECONDS": "10",
            }
        )
        try:
            emulator.wait_ready(path="/healthz")
            service.wait_ready()
            result: dict[str, httpx.Response] = {}

            def mint() -> None:
                result["response"] = httpx.post(f"{service.url}{SESSIONS}", json={}, timeout=15)

            worker = threading.Thread(target=mint)
            worker.start()
            time.sleep(0.5)  # the mint is now waiting on the slow upstream
            started = time.monotonic()
            code = service.stop()
            worker.join(timeout=15)
            assert code == 0
            assert result["response"].status_code == 200
            assert result["response"].json()["client_secret"]["value"].startswith("ek_emulator_")
            assert time.monotonic() - started < 10
        finally:
            service.stop()
            emulator.stop()
