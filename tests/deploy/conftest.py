"""Fixtures of the deploy tests: the parsed Dockerfile, a /healthz stand-in, and the built image.

The image fixtures are session-scoped: the container and the compose tests share one build."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deploy import base_image, check_container
from deploy.check_container import Build
from deploy.dockerfile import Dockerfile
from deploy.podman import Podman
from tests.deploy.support import DOCKERFILE, missing

HINT = "apt-get install podman runc mmdebstrap; .ci/run installs them"


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


@pytest.fixture(name="podman", scope="session")
def fixture_podman() -> Podman:
    """Podman with this project's options, or skip/fail when it is not installed."""
    podman = Podman.find()
    if podman is None:
        missing(f"podman is not installed ({HINT})")
    return podman


@pytest.fixture(name="base", scope="session")
def fixture_base(podman: Podman) -> str:
    """The Debian bookworm python3.11 base, bootstrapped once per podman store."""
    if not podman.image_exists(base_image.PYTHON.tag()) and shutil.which("mmdebstrap") is None:
        missing(f"mmdebstrap is not installed and the base image is not cached ({HINT})")
    return base_image.PYTHON.ensure(podman)


@pytest.fixture(name="build", scope="session")
def fixture_build(podman: Podman, base: str) -> Build:
    """deploy/Dockerfile built on the base, with the host's CA as a build secret."""
    return check_container.build_image(podman, base)
