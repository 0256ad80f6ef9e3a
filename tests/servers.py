"""Real local servers for the tests: redis-server, a JWKS endpoint, the service itself.

Each binds to a free loopback port and is stopped when its fixture ends.
When a binary is missing the test is skipped with the reason, unless the
matching REQUIRE_* variable is set (CI sets them), which turns the skip into
a failure.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.suite_logs import LOG_DIR_ENV

ROOT = Path(__file__).resolve().parents[1]


def log_file(name: str) -> Path:
    """Where a subprocess writes its output: the suite's log folder, scanned for secrets."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or tempfile.gettempdir())
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


STARTUP_GUARD = 30.0
STOP_GUARD = 45.0
"""How long a server may take to start before it counts as hung: generous, since a loaded
machine may take seconds to start a process, and only a hang should fail a test here."""


def wait_for_port(port: int, timeout: float = STARTUP_GUARD) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A throwaway CA, and a server certificate and key it signed (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """A new CA and a certificate for 127.0.0.1 and localhost, written into `folder`."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rtp test CA")])
    ca_cert = certificate("rtp test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate("127.0.0.1", key, ca_name, ca_key, ca=False)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class RedisServer:
    """A real redis-server on a free port, restartable (for outage tests).

    With `tls`, it speaks TLS only (clients need no certificate of their own);
    with `replica_of`, it replicates that port's server.
    """

    def __init__(
        self, binary: str, tls: TlsFiles | None = None, replica_of: int | None = None
    ) -> None:
        self.binary = binary
        self.tls = tls
        self.replica_of = replica_of
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        port = ["--port", str(self.port)]
        if self.tls:
            port = [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls.cert),
                "--tls-key-file",
                str(self.tls.key),
                "--tls-ca-cert-file",
                str(self.tls.ca),
                "--tls-auth-clients",
                "no",
                "--tls-replication",
                "yes",
            ]
        replication = [
            # Full syncs over the socket, at once: no RDB file, no 5 s wait for more replicas.
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--repl-diskless-load",
            "swapdb",
        ]
        if self.replica_of:
            replication += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.process = subprocess.Popen(
            [
                self.binary,
                *port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tempfile.gettempdir(),
                *replication,
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

    def client(self) -> redis.Redis:
        """A synchronous client of this server, for the tests' own checks."""
        return redis.Redis.from_url(self.url, socket_timeout=2, decode_responses=True)


@contextmanager
def redis_server(tls: TlsFiles | None = None) -> Iterator[RedisServer]:
    """Start redis-server; skip or fail as REQUIRE_REDIS says when it is missing."""
    server = RedisServer(require("redis-server", "REQUIRE_REDIS"), tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout}s")
        time.sleep(0.05)


class SentinelSet:
    """A primary, its replica, and one sentinel (quorum 1) watching them as `rtp`.

    The sentinel is `redis-server --sentinel`: the redis-server package is
    enough, no redis-sentinel package needed.

    The sentinel declares the primary down 200 ms after it stops answering, so
    a failover completes within a few seconds.
    """

    MASTER = "rtp"

    def __init__(
        self, server: str, folder: Path, tls: TlsFiles | None, password: str | None
    ) -> None:
        self.binary = server
        self.tls = tls
        self.password = password
        self.primary = RedisServer(server, tls)
        self.replica = RedisServer(server, tls, replica_of=self.primary.port)
        self.port = free_port()
        self.config = folder / f"sentinel-{self.port}.conf"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        query = {}
        if self.tls:
            query["ssl_ca_certs"] = str(self.tls.ca)
        if self.password:
            query["sentinel_password"] = self.password
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        url = f"{scheme}://127.0.0.1:{self.port}/{self.MASTER}"
        return f"{url}?{urlencode(query)}" if query else url

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        with self.replica.client() as replica:
            wait_until(
                lambda: replica.info("replication")["master_link_status"] == "up",
                STARTUP_GUARD,
                "replica in sync",
            )
        listen = f"port {self.port}"
        if self.tls:
            listen = (
                f"port 0\ntls-port {self.port}\ntls-cert-file {self.tls.cert}\n"
                f"tls-key-file {self.tls.key}\ntls-ca-cert-file {self.tls.ca}\n"
                "tls-auth-clients no\ntls-replication yes"
            )
        self.config.write_text(
            f"{listen}\nbind 127.0.0.1\n"
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER} 200\n"
            f"sentinel failover-timeout {self.MASTER} 2000\n"
            + (f"requirepass {self.password}\n" if self.password else "")
        )
        self.process = subprocess.Popen(
            [self.binary, str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        with self.client() as sentinel:
            wait_until(
                lambda: (
                    [
                        (replica["is_odown"], replica["is_sdown"], replica["is_disconnected"])
                        for replica in sentinel.sentinel_slaves(self.MASTER)
                    ]
                    == [(False, False, False)]
                ),
                STARTUP_GUARD,
                "sentinel has a replica it could promote",
            )

    def client(self) -> redis.Redis:
        """A synchronous client of the sentinel."""
        tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.tls.ca)} if self.tls else {}
        return redis.Redis(
            port=self.port, password=self.password, socket_timeout=2, decode_responses=True, **tls
        )

    def master_port(self) -> int:
        """The master's port in SENTINEL MASTERS, where redis-py looks (after +switch-master)."""
        with self.client() as sentinel:
            return int(sentinel.sentinel_master(self.MASTER)["port"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        self.replica.stop()
        self.primary.stop()


@contextmanager
def sentinel_set(
    folder: Path, tls: TlsFiles | None = None, password: str | None = None
) -> Iterator[SentinelSet]:
    """Start a primary, a replica and a sentinel (requiring `password` if given).

    Skips, or fails under REQUIRE_REDIS=1, when redis-server is missing.
    """
    servers = SentinelSet(require("redis-server", "REQUIRE_REDIS"), folder, tls, password)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


class FaultyLink:
    """A TCP relay to a local server that can fail the connections that send a Lua script.

    New connections go to `target_port`, which a test may change (as a managed
    Redis moves its DNS name on a failover). `mode` decides what happens to a
    connection when it sends EVALSHA or EVAL:
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
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            muted = threading.Event()
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._relay, args=(source, sink, upstream, muted), daemon=True
                ).start()

    def _relay(
        self, source: socket.socket, sink: socket.socket, upstream: bool, muted: threading.Event
    ) -> None:
        """Copy one direction: the client's scripts meet `mode`; replies after them may be muted."""
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if upstream and b"EVAL" in chunk:  # EVAL or EVALSHA
                    self.scripts += 1
                    if self.mode == "cut":
                        break
                    if self.mode == "swallow":
                        muted.set()
                if upstream or not muted.is_set():
                    sink.sendall(chunk)
        self._close(source, sink)

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
        self.down = False
        """While set, every fetch gets a 503 (the identity provider is down)."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(503 if outer.down else 200)
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
                (
                    "OPENAI_",
                    "POLICY_",
                    "UPSTREAM_",
                    "AUTH_",
                    "RATE_",
                    "QUOTA_",
                    "REDIS_",
                    "CORS_",
                    "CALLS_",
                )
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

    def wait_ready(self, timeout: float = STARTUP_GUARD, path: str = "/readyz") -> None:
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
        """SIGTERM, then the exit status; SIGKILL only past the drain's own limit.

        The guard outlasts SHUTDOWN_GRACE_SECONDS (20 s by default) with room
        for a loaded machine, so a drain that ends by itself is never killed
        and miscounted as an unclean exit.
        """
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_GUARD)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=5)


@contextmanager
def emulator_process(*args: str) -> Iterator[ServiceProcess]:
    """`python -m service emulator ARGS` on a free port, ready (`/healthz`), stopped after.

    The upstream of the tests that run the service as a real process: its own
    port and log file, like OpenAI on the other side of a socket.
    """
    port = free_port()
    process = ServiceProcess({"PORT": str(port)}, ("emulator", "--port", str(port), *args))
    try:
        process.wait_ready(path="/healthz")
        yield process
    finally:
        process.stop()
