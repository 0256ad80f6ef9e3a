"""The production upstream client against real local servers playing OpenAI.

respx covers the upstream through a mock transport; these tests send the
same requests over real sockets through the client production builds (httpx
over the aiohttp transport), so its error mapping is tested too: every fault
gets its precise status, nothing that may have reached OpenAI is sent twice,
and the key never leaks. Then what a pooled client must get right:
keep-alive reuse, a server dropping idle connections, chunked, oversized
and interim (1xx) answers, TLS, and proxies from the environment.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from service.api import create_app
from tests.conftest import API_KEY, MakeSettings, serving
from tests.contract import assert_valid_ga_request
from tests.paths import CLIENT_SECRETS, SESSIONS
from tests.servers import free_port, require, wait_for_port

pytestmark = pytest.mark.anyio
seen: list[dict[str, Any]] = []
RELEASE = web.AppKey("release", asyncio.Event)
"""Set when the fake OpenAI stops: until then its `slow` and `drop` faults never answer."""


async def mint(request: web.Request) -> web.Response:
    """Like OpenAI: checks the key header and the body, answers with a secret."""
    if request.headers.get("Authorization") != f"Bearer {API_KEY}":
        return web.json_response({"error": {"message": "bad key"}}, status=401)
    body = await request.json()
    assert_valid_ga_request(body)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    seen.append(
        {
            "body": body,
            "request_id": request.headers.get("X-Request-ID"),
            "peer": peer,
            "via": request.headers.get("Via", ""),
            "transport": request.transport,
        }
    )
    return web.json_response(
        {
            "value": "ek_real_socket_secret_0123456789",
            "expires_at": 1_900_000_000,
            "session": {**body["session"], "id": "sess_sock"},
        }
    )


async def fault(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    seen.append({"fault": kind})
    if kind == "503":
        return web.json_response({"error": {"message": "down"}}, status=503)
    if kind == "429":
        return web.json_response(
            {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "11"}
        )
    if kind == "garbage":
        return web.Response(text="<html>proxy error</html>", content_type="text/html")
    if kind == "slow":
        await request.app[RELEASE].wait()  # longer than any deadline: until the server stops
    if kind == "chunked":
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (
            b'{"value": "ek_chunked_0123456789", ',
            b'"expires_at": 1900000000, ',
            b'"session": {"id": "sess_chunked"}}',
        ):
            await response.write(part)
        await response.write_eof()
        return response
    if kind == "drop":
        assert request.transport is not None
        request.transport.close()
        await request.app[RELEASE].wait()
    if kind == "huge":
        return web.Response(body=b"x" * (2 << 20), content_type="application/json")
    if kind == "endless":
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(1024):
            await response.write(b" " * 65536)
        return response
    return web.Response(status=500)


@asynccontextmanager
async def fake_openai(
    ssl_context: ssl.SSLContext | None = None, keepalive: float = 75.0
) -> AsyncIterator[int]:
    """A local aiohttp server: /v1/... mints; /fault/<kind>/v1/... misbehaves."""
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_post(CLIENT_SECRETS, mint)
    app.router.add_post("/fault/{kind}/v1/realtime/client_secrets", fault)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=keepalive)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    try:
        yield port
    finally:
        app[RELEASE].set()
        await runner.cleanup()


@pytest.fixture(name="openai_port")
async def fixture_openai_port() -> AsyncIterator[int]:
    """The fake OpenAI over plain HTTP."""
    async with fake_openai() as port:
        yield port


def connections(requests: list[dict[str, Any]]) -> int:
    """How many server-side connections carried `requests`.

    Counted by transport object, not by the peer's address: once a connection
    is closed, the kernel may hand its ephemeral port to the next one, so a
    new connection can arrive from the same address. `seen` keeps every
    transport alive, so no two of them share an `id`.
    """
    return len({id(item["transport"]) for item in requests})


async def post(
    make_settings: MakeSettings,
    base_url: str,
    times: int = 1,
    between: Callable[[], Awaitable[None]] | None = None,
    **settings: Any,
) -> httpx.Response:
    """Mint `times` times through the production client; await `between` after each mint."""
    app = create_app(make_settings(openai_base_url=base_url, **settings))  # production client
    async with serving(app) as client:
        for _ in range(times):
            response = await client.post(
                SESSIONS, json={"voice": "ash"}, headers={"X-Request-ID": "sock-1"}
            )
            if between is not None:
                await between()
    assert API_KEY not in response.text
    return response


class TestFaults:
    """Real sockets, each fault, through the production client."""

    async def test_mint_over_a_real_socket(
        self, make_settings: MakeSettings, openai_port: int
    ) -> None:
        """The body, key header and request id arrive as respx sees them; the secret returns."""
        seen.clear()
        response = await post(make_settings, f"http://127.0.0.1:{openai_port}/v1")
        assert response.status_code == 200
        assert response.json()["client_secret"]["value"] == "ek_real_socket_secret_0123456789"
        assert seen[-1]["request_id"] == "sock-1"
        assert seen[-1]["body"]["session"]["audio"]["output"]["voice"] == "ash"

    @pytest.mark.parametrize(
        ("kind", "status", "code"),
        [
            ("503", 502, "upstream_server_error"),
            ("429", 429, "upstream_rate_limited"),
            ("garbage", 502, "upstream_bad_response"),
            ("drop", 502, "upstream_connection"),
            ("slow", 504, "upstream_timeout"),
            ("huge", 502, "upstream_bad_response"),
            ("endless", 502, "upstream_bad_response"),
        ],
    )
    async def test_fault(
        self, make_settings: MakeSettings, openai_port: int, kind: str, status: int, code: str
    ) -> None:
        """Each misbehaviour maps to its status and code, and is never sent a second time."""
        seen.clear()
        response = await post(
            make_settings,
            f"http://127.0.0.1:{openai_port}/fault/{kind}/v1",
            # Only `slow` is meant to meet the deadline; the others get one no machine meets.
            upstream_timeout_seconds=1.0 if kind == "slow" else 30.0,
            upstream_max_retries=1,
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert seen == [{"fault": kind}]
        if kind == "429":
            assert response.headers["retry-after"] == "11"

    async def test_refused_port_is_502(self, make_settings: MakeSettings) -> None:
        """Nothing listening (the request provably never left): retried, then 502."""
        response = await post(make_settings, f"http://127.0.0.1:{free_port()}/v1")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unreachable"

    async def test_chunked_answer(self, make_settings: MakeSettings, openai_port: int) -> None:
        """A chunked answer is read whole."""
        response = await post(make_settings, f"http://127.0.0.1:{openai_port}/fault/chunked/v1")
        assert response.status_code == 200, response.text
        assert response.json()["client_secret"]["value"] == "ek_chunked_0123456789"

    async def test_bad_server_key_is_502(
        self, make_settings: MakeSettings, openai_port: int
    ) -> None:
        """OpenAI refusing the server's key is a 502 for the caller."""
        response = await post(
            make_settings,
            f"http://127.0.0.1:{openai_port}/v1",
            openai_api_key="sk-test-wrong-key-0123456789",
        )
        assert response.status_code == 502
        assert json.loads(response.text)["error"]["code"] == "upstream_auth_failed"


class TestPool:
    """What the pooled client must get right beyond the faults above."""

    async def test_keep_alive_reuses_one_connection(
        self, make_settings: MakeSettings, openai_port: int
    ) -> None:
        """Sequential mints travel over one kept-alive connection."""
        seen.clear()
        await post(make_settings, f"http://127.0.0.1:{openai_port}/v1", times=5)
        assert len(seen) == 5
        assert connections(seen) == 1

    async def test_server_dropping_idle_connections(self, make_settings: MakeSettings) -> None:
        """When the server closes an idle connection, the next mint opens a new one."""
        seen.clear()

        async def server_closed_it() -> None:
            """Until the server has closed the connection the last mint came on (idle 0.1 s)."""
            transport = seen[-1]["transport"]
            async with asyncio.timeout(30):  # only a hang guard
                while not transport.is_closing():
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0)  # the close itself (the socket's) runs on the next turn

        async with fake_openai(keepalive=0.1) as port:
            response = await post(
                make_settings,
                f"http://127.0.0.1:{port}/v1",
                times=3,
                between=server_closed_it,
                upstream_max_retries=0,
            )
        assert response.status_code == 200
        assert connections(seen) == 3

    async def test_tls_with_verification(
        self, make_settings: MakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """HTTPS upstream: the certificate is verified against the trusted CAs, then it mints."""
        cert, key = self_signed(tmp_path)
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(cert, key)
        async with fake_openai(ssl_context=server_ssl) as port:
            untrusted = await post(
                make_settings, f"https://localhost:{port}/v1", upstream_max_retries=0
            )
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            trusted = await post(make_settings, f"https://localhost:{port}/v1")
        assert untrusted.status_code == 502
        assert trusted.status_code == 200, trusted.text


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost, made for this test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@asynccontextmanager
async def early_hints_openai() -> AsyncIterator[int]:
    """A server that sends `103 Early Hints` before each answer, each answer its own secret.

    Raw bytes on purpose: no server framework emits interim responses on demand.
    """
    served = 0

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            served += 1
            body = json.dumps(
                {"value": f"ek_caller_{served}_0123456789", "expires_at": 1_900_000_000}
            ).encode()
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await talk(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


class TestInterimResponses:
    """An interim `1xx` answer must never be taken for the answer."""

    async def test_each_caller_gets_their_own_secret(self, make_settings: MakeSettings) -> None:
        """Across mints on one kept-alive connection, caller N receives secret N, not N-1's."""
        async with early_hints_openai() as port:
            app = create_app(make_settings(openai_base_url=f"http://127.0.0.1:{port}/v1"))
            async with serving(app) as client:
                secrets = [
                    (await client.post(CLIENT_SECRETS, json={})).json()["value"] for _ in range(3)
                ]
        assert secrets == [f"ek_caller_{n}_0123456789" for n in (1, 2, 3)]


@pytest.fixture(name="forward_proxy")
def fixture_forward_proxy(tmp_path: Path) -> Iterator[int]:
    """A real forward proxy (tinyproxy) on loopback, which marks what it forwards with `Via`."""
    binary = require("tinyproxy", "REQUIRE_DEPLOY_TOOLS")
    port = free_port()
    config = tmp_path / "tinyproxy.conf"
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
        f'ViaProxyName "test-proxy"\nLogFile "{tmp_path / "proxy.log"}"\nLogLevel Info\n'
        f'PidFile "{tmp_path / "proxy.pid"}"\nMaxClients 50\n'
    )
    process = subprocess.Popen([binary, "-d", "-c", str(config)])
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)


def use_proxy(
    monkeypatch: pytest.MonkeyPatch, variable: str, port: int, no_proxy: str | None = None
) -> None:
    """Set `variable` (HTTP_PROXY or HTTPS_PROXY) to the local proxy, and NO_PROXY as given."""
    monkeypatch.setenv(variable, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    if no_proxy is None:
        monkeypatch.delenv("NO_PROXY", raising=False)
    else:
        monkeypatch.setenv("NO_PROXY", no_proxy)


class TestProxy:
    """HTTP(S)_PROXY and NO_PROXY from the environment, through a real forward proxy."""

    async def test_mint_goes_through_http_proxy(
        self,
        make_settings: MakeSettings,
        openai_port: int,
        forward_proxy: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """With HTTP_PROXY set, the mint reaches OpenAI through the proxy."""
        use_proxy(monkeypatch, "HTTP_PROXY", forward_proxy)
        seen.clear()
        response = await post(make_settings, f"http://127.0.0.1:{openai_port}/v1")
        assert response.status_code == 200, response.text
        assert "test-proxy" in seen[-1]["via"]

    async def test_https_goes_through_the_proxy_tunnel(
        self,
        make_settings: MakeSettings,
        forward_proxy: int,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """With HTTPS_PROXY set, TLS to OpenAI is tunnelled (CONNECT) and still verified."""
        cert, key = self_signed(tmp_path)
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(cert, key)
        use_proxy(monkeypatch, "HTTPS_PROXY", forward_proxy)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async with fake_openai(ssl_context=server_ssl) as port:
            response = await post(make_settings, f"https://localhost:{port}/v1")
        assert response.status_code == 200, response.text
        log = (tmp_path / "proxy.log").read_text()
        assert f"CONNECT localhost:{port} HTTP/1.1" in log

    async def test_no_proxy_exempts_the_host(
        self,
        make_settings: MakeSettings,
        openai_port: int,
        forward_proxy: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A host listed in NO_PROXY is reached directly."""
        use_proxy(monkeypatch, "HTTP_PROXY", forward_proxy, no_proxy="127.0.0.1")
        seen.clear()
        response = await post(make_settings, f"http://127.0.0.1:{openai_port}/v1")
        assert response.status_code == 200, response.text
        assert seen[-1]["via"] == ""
