"""Fixtures of the deploy tests: the parsed Dockerfile and a /healthz stand-in."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.dockerfile import Dockerfile
from tests.deploy.support import DOCKERFILE


@pytest.fixture(name="dockerfile", scope="session")
def fixture_dockerfile() -> Dockerfile:
    """deploy/Dockerfile, parsed by deploy.dockerfile (Docker's own parser underneath)."""
    return Dockerfile.load(DOCKERFILE)


@pytest.fixture(name="health_server")
def fixture_health_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback HTTP server answering /healthz with the status in `status[0]`."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()
