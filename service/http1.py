"""A lean HTTP/1.1 client for one job: POST a small JSON body, read the answer.

The mint path's largest cost was the HTTP client. Measured on this workload
(one uvicorn worker forwarding each request upstream, CPU per request): httpx
~300 µs, aiohttp ~125 µs, this client ~40 µs, uvicorn included. It is small
because the job is: one origin, keep-alive, small bodies, no redirects, no
cookies, no compression, no proxies (`build_sender` picks aiohttp when a proxy
is configured). Parsing is httptools' (llhttp, the parser Node.js and uvicorn
use); TLS is the standard library's `ssl` through the event loop.

Connections are reused while the server keeps them alive, at most
`max_connections` at once (callers wait for a free one), and never reused
after an error, a timeout or a cancelled request, since a late answer could
otherwise be read as the next request's.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

KEEPALIVE_SECONDS = 30.0
"""Idle connections older than this are closed instead of reused (servers drop them)."""


class Http1Error(Exception):
    """The exchange failed: `connect` (never reached) or `broken` (failed mid-way)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self.reusable = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # a stream (TCP or TLS) transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"unparsable response: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.reusable = False
        self._fail("connection closed by the server")

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.reusable = self._parser.should_keep_alive()
            waiter.set_result((self._parser.get_status_code(), self._headers, b"".join(self._body)))

    def _fail(self, detail: str) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(Http1Error("broken", detail))

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Write one request and wait for its complete response."""
        if self.transport is None:
            raise Http1Error("broken", "connection closed by the server")
        self.reusable = False
        self._headers, self._body = {}, []
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class Http1Pool:
    """Keep-alive connections to one origin, bounded, for `post`."""

    def __init__(
        self,
        origin: str,
        *,
        max_connections: int,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "realtime-token-proxy",
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported upstream URL: {origin}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        default_port = self._port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host  # IPv6 literal
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None
        self._connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._user_agent = user_agent

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """POST `body` to `path`; status, lower-cased headers and body of the answer."""
        head = [f"POST {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
                f"User-Agent: {self._user_agent}\r\nContent-Length: {len(body)}\r\n"]  # fmt: skip
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        head.append("\r\n")
        request = "".join(head).encode("latin-1") + body
        async with self._slots:
            connection = await self._connection()
            try:
                answer = await connection.exchange(request)
            except BaseException:
                connection.close()  # never reuse: a late answer would be misread
                raise
            if connection.reusable and connection.transport is not None:
                connection.idle_since = asyncio.get_running_loop().time()
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    async def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        while self._idle:
            connection = self._idle.pop()
            fresh = loop.time() - connection.idle_since < KEEPALIVE_SECONDS
            if fresh and connection.transport is not None and not connection.transport.is_closing():
                return connection
            connection.close()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._tls else None,
                )  # fmt: skip
        except (OSError, ssl.SSLError) as exc:
            raise Http1Error("connect", type(exc).__name__) from None
        return protocol

    async def aclose(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._idle.pop().close()
