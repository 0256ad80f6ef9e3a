"""Real local servers for the tests: redis-server, a JWKS endpoint, the service itself.

Each binds to a free loopback port and is stopped when its fixture ends.
When a binary is missing the test is skipped with the reason, unless the
matching REQUIRE_* variable is set (CI sets them), which turns the skip into
a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def log_file(name: str) -> Path:
    """Where a subprocess writes its output: the suite's log folder, scanned for secrets."""
    folder = Path(os.environ.get("RTP_TEST_LOG_DIR") or tempfile.gettempdir())
    return folder / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"


def require(binary: str, variable: str) -> str:
    """The binary's path, or skip (fail under `variable=1`) with a stated reason."""
    path = shutil.which(binary)
    if path is None:
        reason = f"{binary} is not installed (apt-get install {binary}); .ci/run installs it"
        if os.environ.get(variable) == "1":
            pytest.fail(f"{variable}=1 but {reason}")
        pytest.skip(reason)
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


class RedisServer:
    """A real redis-server on a free port, restartable (for outage tests)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start redis-server; skip or fail as REQUIRE_REDIS says when it is missing."""
    server = RedisServer(require("redis-server", "REQUIRE_REDIS"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class FaultyLink:
    """A TCP relay to a local server that can fail the connections that send a Lua script.

    `mode` decides what happens to a connection when it sends EVALSHA or EVAL:
    `pass` relays it, `swallow` relays it but drops every reply after it (the
    script runs, the client times out), `cut` closes the connection instead
    (the client sees a `ConnectionError`). `scripts` counts the scripts sent.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self.scripts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            muted = threading.Event()
            threading.Thread(
                target=self._upstream, args=(client, server, muted), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(server, client, muted), daemon=True
            ).start()

    def _upstream(
        self, client: socket.socket, server: socket.socket, muted: threading.Event
    ) -> None:
        while chunk := self._receive(client):
            if b"EVAL" in chunk:  # EVAL or EVALSHA
                self.scripts += 1
                if self.mode == "cut":
                    break
                if self.mode == "swallow":
                    muted.set()
            server.sendall(chunk)
        self._close(client, server)

    def _downstream(
        self, server: socket.socket, client: socket.socket, muted: threading.Event
    ) -> None:
        while chunk := self._receive(server):
            if not muted.is_set():
                client.sendall(chunk)
        self._close(client, server)

    @staticmethod
    def _receive(sock: socket.socket) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        self._close(*self._sockets)


class JwksServer:
    """Serves a JWKS document that tests can replace (key rotation), counting fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ServiceProcess:
    """`python -m service` as a real process (uvicorn, workers), for multi-worker tests."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.port = int(env.get("PORT") or free_port())
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("OPENAI_", "POLICY_", "UPSTREAM_", "AUTH_", "RATE_", "QUOTA_", "REDIS_", "CORS_")
            )
        }
        self.log_path = log_file(f"service-{self.port}")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", *args],
                env={
                    **clean,
                    "HOST": "127.0.0.1",
                    "PORT": str(self.port),
                    "SECRETS_DIR": "/none",
                    "LOG_SCRUB": "false",  # the suite's log scan must see what code wrote
                    **env,
                },
                cwd=ROOT / "tests",
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20.0, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("service not ready")

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=5)
