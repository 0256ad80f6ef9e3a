"""The server's connection limits, over real sockets against a real `python -m service`.

A bounded request head (431 or a closed connection, memory flat), read
deadlines (slow-drip heads and bodies and idle fresh sockets are closed by
HTTP_READ_TIMEOUT_SECONDS), keep-alive untouched, and at most
MAX_CONNECTIONS_PER_WORKER connections per worker (the next one is closed
unanswered).

The tests assert what the server did and why (it closed the connection, it
answered nothing, a deadline longer than the test could run was not the
cause), never how soon: a loaded machine may make anything late. HANG_GUARD
only ends a test that would otherwise wait for ever.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import pickle
import select
import socket
import time
from collections.abc import Iterator
from functools import partial

import pytest
import uvicorn

from service.server.protocol import ConnectionLimits, LimitedHttpToolsProtocol, http_protocol
from tests.paths import CLIENT_SECRETS, HEALTHZ
from tests.servers import ServiceProcess

READ_TIMEOUT = 1.0
"""HTTP_READ_TIMEOUT_SECONDS for the deadline tests."""
NO_DEADLINE = 300.0
"""HTTP_READ_TIMEOUT_SECONDS (its maximum) where a test must never meet the deadline: longer
than pytest's timeout lets any test run, so whatever closes a connection there is not it."""
DRIP_INTERVAL = 0.5
"""Between dripped bytes: under READ_TIMEOUT, so a timer that each byte reset would never fire."""
HANG_GUARD = 30.0
"""How long a test waits for the server to act before calling it a hang (not a deadline)."""
MINT_BODY = json.dumps({"session": {"type": "realtime"}}).encode()


def start_service(**env: str) -> ServiceProcess:
    """One worker minting against the built-in emulator, no caller auth, ready."""
    service = ServiceProcess(
        {"AUTH_MODE": "none", "UPSTREAM_EMULATOR": "true", "WORKERS": "1", **env}
    )
    try:
        service.wait_ready()
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(name="service", scope="module")
def fixture_service() -> Iterator[ServiceProcess]:
    """The service with a 1 s read deadline."""
    service = start_service(HTTP_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT))
    yield service
    service.stop()


@pytest.fixture(name="patient_service", scope="module")
def fixture_patient_service() -> Iterator[ServiceProcess]:
    """The service with a read deadline no test meets, so any refusal is the head cap's."""
    service = start_service(HTTP_READ_TIMEOUT_SECONDS=str(NO_DEADLINE))
    yield service
    service.stop()


@pytest.fixture(name="small_service")
def fixture_small_service() -> Iterator[ServiceProcess]:
    """The service admitting at most four connections."""
    service = start_service(MAX_CONNECTIONS_PER_WORKER="4")
    yield service
    service.stop()


def connect(service: ServiceProcess) -> socket.socket:
    """A raw TCP connection to the service."""
    return socket.create_connection(("127.0.0.1", service.port), timeout=5)


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within `seconds`, and what it sent first."""
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return True, received
        if not data:
            return True, received
        received += data
    return False, received


def drip_until_closed(sock: socket.socket, drop: bytes = b"a") -> bytes:
    """Send `drop` every DRIP_INTERVAL until the server closes; what the server sent.

    Fails the test if the connection is still open after HANG_GUARD seconds.
    """
    received = b""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        closed, answer = closed_within(sock, DRIP_INTERVAL)
        received += answer
        if closed:
            return received
        try:
            sock.sendall(drop)
        except (BrokenPipeError, ConnectionResetError):
            return received
    pytest.fail(f"the connection was still open after {HANG_GUARD} s of dripping")


def served(service: ServiceProcess) -> http.client.HTTPConnection | None:
    """A new keep-alive connection with one request answered, or None if it was refused."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        connection.request("GET", HEALTHZ)
        connection.getresponse().read()
    except (http.client.RemoteDisconnected, ConnectionError):
        connection.close()
        return None
    return connection


def vm_rss_kib(pid: int) -> int:
    """The process's resident memory, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc status")


def head(path: str, *extra: str, method: str = "GET") -> bytes:
    """A request head with the given extra header lines."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *extra, "", ""]
    return "\r\n".join(lines).encode()


class TestRequestHead:
    """The request head is capped at 16 KiB."""

    def test_oversized_head_is_refused_before_any_deadline(
        self, patient_service: ServiceProcess
    ) -> None:
        """A 64 KiB header gets 431 or a closed connection from a service whose read deadline
        no test lives to see: the head cap refused it."""
        with connect(patient_service) as sock:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(head(HEALTHZ, "X-Big: " + "a" * 65536))
            closed, answer = closed_within(sock, HANG_GUARD)
        assert closed
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")

    def test_oversized_head_gets_the_error_envelope(self, patient_service: ServiceProcess) -> None:
        """A 20 KiB header gets 431 with OpenAI's error envelope, then the connection closes."""
        connection = http.client.HTTPConnection("127.0.0.1", patient_service.port, timeout=5)
        connection.request("GET", HEALTHZ, headers={"X-Big": "a" * 20 * 1024})
        response = connection.getresponse()
        error = json.loads(response.read())["error"]
        connection.close()
        assert response.status == 431
        assert response.getheader("Connection") == "close"
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "request_header_fields_too_large"

    def test_head_under_the_cap_is_served(self, patient_service: ServiceProcess) -> None:
        """A 12 KiB header (a fat bearer token, say) is still served."""
        connection = http.client.HTTPConnection("127.0.0.1", patient_service.port, timeout=5)
        connection.request("GET", HEALTHZ, headers={"X-Big": "a" * 12 * 1024})
        assert connection.getresponse().status == 200
        connection.close()

    def test_huge_head_leaves_memory_flat(self, patient_service: ServiceProcess) -> None:
        """A 20 MiB header is cut off before the worker's memory grows by 8 MiB."""
        pid = patient_service.process.pid
        before = vm_rss_kib(pid)
        chunk = b"a" * 65536
        with connect(patient_service) as sock:
            sock.sendall(head(HEALTHZ).removesuffix(b"\r\n") + b"X-Big: ")
            with contextlib.suppress(OSError):  # refused mid-send: reset, broken pipe, timeout
                for _ in range(20 * 1024 * 1024 // len(chunk)):
                    sock.sendall(chunk)
            # Closed by the server: whatever it was going to read, it has read.
            closed, _ = closed_within(sock, HANG_GUARD)
            during = vm_rss_kib(pid)
        assert closed
        assert during - before < 8 * 1024


class TestReadDeadlines:
    """A request's head and body must arrive within HTTP_READ_TIMEOUT_SECONDS."""

    def test_slow_drip_head_is_cut(self, service: ServiceProcess) -> None:
        """A head dripped one byte per 0.5 s (under the 1 s deadline, so the bytes never
        stop) is closed unanswered: the deadline counts from the connection, not the byte."""
        with connect(service) as sock:
            sock.sendall(head(HEALTHZ).removesuffix(b"\r\n") + b"X-Drip: ")
            assert drip_until_closed(sock) == b""

    def test_slow_drip_body_is_cut(self, service: ServiceProcess) -> None:
        """A mint body dripped one byte per 0.5 s is closed by the deadline, unanswered."""
        with connect(service) as sock:
            sock.sendall(
                head(
                    CLIENT_SECRETS,
                    "Content-Type: application/json",
                    "Content-Length: 1000",
                    method="POST",
                )
            )
            assert drip_until_closed(sock) == b""

    def test_idle_fresh_socket_is_closed(self, service: ServiceProcess) -> None:
        """A connection that sends nothing is closed by the deadline, unanswered."""
        with connect(service) as sock:
            closed, answer = closed_within(sock, HANG_GUARD)
        assert closed
        assert answer == b""

    def test_slow_second_request_is_cut(self, service: ServiceProcess) -> None:
        """On a keep-alive connection, a later request's dripped head is cut like the first's."""
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        connection.request("GET", HEALTHZ)
        assert connection.getresponse().read()
        sock = connection.sock
        assert isinstance(sock, socket.socket)
        sock.sendall(head(HEALTHZ).removesuffix(b"\r\n") + b"X-Drip: ")
        assert drip_until_closed(sock) == b""
        connection.close()

    def test_stray_line_breaks_between_requests_are_cut(self, service: ServiceProcess) -> None:
        """Empty lines dripped after a response (they cancel the keep-alive timer) are cut too."""
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        connection.request("GET", HEALTHZ)
        assert connection.getresponse().read()
        sock = connection.sock
        assert isinstance(sock, socket.socket)
        assert drip_until_closed(sock, b"\r\n") == b""
        connection.close()

    def test_keep_alive_client_outlives_the_deadline(self, service: ServiceProcess) -> None:
        """Prompt requests on one connection keep working well past the read deadline."""
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        sockets = set()
        opened = time.monotonic()
        for request in range(4):
            if request:
                time.sleep(READ_TIMEOUT * 0.6)  # idle between requests: the stimulus
            last_sent = time.monotonic()
            connection.request(
                "POST", CLIENT_SECRETS, body=MINT_BODY, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["value"].startswith("ek_")
            sockets.add(id(connection.sock))
        connection.close()
        assert len(sockets) == 1
        assert last_sent - opened > READ_TIMEOUT  # the last one came after the deadline


class TestConnectionLimit:
    """At most MAX_CONNECTIONS_PER_WORKER connections are open in a worker."""

    @staticmethod
    def open_connections(service: ServiceProcess, count: int) -> list[http.client.HTTPConnection]:
        """`count` keep-alive connections, each proven admitted by one answered request."""
        connections = []
        for _ in range(count):
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
            connection.request("GET", HEALTHZ)
            assert connection.getresponse().read()
            connections.append(connection)
        return connections

    def test_connection_over_the_limit_is_closed_unanswered(
        self, small_service: ServiceProcess
    ) -> None:
        """With four connections open the fifth is closed without an answer to its complete
        request (so not by a read deadline); the four still work."""
        connections = self.open_connections(small_service, 4)
        with connect(small_service) as sock:
            sock.sendall(head(HEALTHZ))
            closed, answer = closed_within(sock, HANG_GUARD)
        assert closed
        assert answer == b""
        for connection in connections:
            connection.request("GET", HEALTHZ)
            assert connection.getresponse().status == 200
            connection.close()

    def test_closing_a_connection_frees_a_place(self, small_service: ServiceProcess) -> None:
        """Once one of four connections closes, a new one is served."""
        connections = self.open_connections(small_service, 4)
        connections.pop().close()
        deadline = time.monotonic() + HANG_GUARD
        # Refused until the worker has seen the close; served once it has.
        while (fifth := served(small_service)) is None:
            assert time.monotonic() < deadline, f"no place freed after {HANG_GUARD} s"
            time.sleep(0.05)
        for connection in [*connections, fifth]:
            connection.close()


class TestWorkers:
    """Spawned worker processes get the same limits as a single worker."""

    def test_limits_survive_the_trip_to_a_worker(self) -> None:
        """uvicorn's config, pickled as it is for each spawned worker, keeps the limits."""
        limits = ConnectionLimits(read_timeout=3.0, max_connections=7)
        config = uvicorn.Config("service.server.asgi:app", http=http_protocol(limits), workers=2)
        factory = pickle.loads(pickle.dumps(config)).http  # noqa: S301 - our own bytes
        assert isinstance(factory, partial)
        assert factory.func is LimitedHttpToolsProtocol
        assert factory.keywords == {"limits": limits}
