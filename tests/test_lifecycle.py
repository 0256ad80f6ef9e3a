"""Graceful shutdown: unready at once on SIGTERM, in-flight mints finish, exit 0."""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from service.api import create_app
from tests.conftest import MakeSettings, serving
from tests.paths import SESSIONS
from tests.servers import ServiceProcess, wait_until

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


class HeldUpstream:
    """OpenAI's mint endpoint on a free port, holding each mint until the test releases it.

    `arrived` is set when a mint reaches it; it answers only after `release`
    is set: while it waits, the mint is provably in flight.
    """

    SECRET = "ek_test_INFLIGHT_0123456789"

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.arrived.set()
                outer.release.wait(timeout=60)
                session = {**asked.get("session", {}), "id": "sess_inflight"}
                session["object"] = "realtime.session"
                body = json.dumps(
                    {"value": outer.SECRET, "expires_at": 1_900_000_000, "session": session}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class TestSigterm:
    """A real process receiving SIGTERM with a mint in flight."""

    def test_in_flight_mint_finishes_and_process_exits_0(self) -> None:
        """The mint started before SIGTERM completes with a secret; the process exits 0."""
        upstream = HeldUpstream()
        service = ServiceProcess(
            {
                "AUTH_MODE": "none",
                "OPENAI_API_KEY": "sk-test-lifecycle-not-a-key",
                "OPENAI_BASE_URL": upstream.url,
                "WORKERS": "1",
                "SHUTDOWN_GRACE_SECONDS": "30",
            }
        )
        try:
            service.wait_ready()
            result: dict[str, httpx.Response] = {}

            def mint() -> None:
                result["response"] = httpx.post(f"{service.url}{SESSIONS}", json={}, timeout=60)

            worker = threading.Thread(target=mint)
            worker.start()
            assert upstream.arrived.wait(timeout=30), "the mint never reached the upstream"
            os.killpg(service.process.pid, signal.SIGTERM)
            wait_until(
                lambda: "shutdown_started" in service.log_path.read_text(),
                30,
                "the service logged its shutdown",
            )
            upstream.release.set()  # only now may the in-flight mint complete
            code = service.process.wait(timeout=30)
            worker.join(timeout=30)
            assert code == 0
            assert result["response"].status_code == 200
            assert result["response"].json()["client_secret"]["value"] == HeldUpstream.SECRET
        finally:
            service.stop()
            upstream.close()
