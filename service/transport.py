"""The wire under the upstream client: one pooled HTTP connection pool per process.

`Upstream` speaks to OpenAI through a `Sender`: POST bytes, get back status,
headers and body, or a `SendFailed` saying whether the connection could not be
made, timed out, or broke. Three senders exist:

- `Http1Sender`, the production default: the lean keep-alive client in
  `service.http1`. Measured on the mint path (one uvicorn worker forwarding
  each request upstream, CPU per request, uvicorn included): httpx's
  `AsyncClient` ~300 µs, aiohttp ~125 µs, this client ~40 µs.
- `AiohttpSender`, when an HTTP(S) proxy is configured for the upstream: the
  lean client does not speak proxies; aiohttp does (`trust_env`).
- `HttpxSender`, over any httpx transport: the in-process emulator
  (`httpx.ASGITransport`) and, in tests, respx (`httpx.MockTransport`), which
  sees and checks every body exactly as the others send it.

Both map their library's exceptions onto `SendFailed` here, so `upstream.py`
reasons about failures once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp

from service.http1 import Http1Error, Http1Pool

if TYPE_CHECKING:
    import httpx

Failure = Literal["connect", "timeout", "broken"]


@dataclass(frozen=True, slots=True)
class Reply:
    """An upstream answer: status, lower-cased headers we read, raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class SendFailed(Exception):
    """No usable answer: `connect` (never reached), `timeout`, or `broken` mid-way."""

    def __init__(self, kind: Failure, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: Failure = kind
        self.detail = detail


class Sender(Protocol):
    """POSTs a body and returns the answer, or raises `SendFailed`."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply: ...

    async def aclose(self) -> None: ...


class AiohttpSender:
    """aiohttp's connection pool, honouring HTTP(S)_PROXY: used when a proxy is configured."""

    def __init__(self, max_connections: int, timeout: float) -> None:
        self._limit = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, 5.0), sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop, as aiohttp requires.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit, keepalive_timeout=30.0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
                trust_env=True,  # HTTP(S)_PROXY, NO_PROXY
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        try:
            async with self._pool().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                content = await response.read()
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ConnectionTimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise SendFailed("timeout", type(exc).__name__) from None
        except TimeoutError as exc:
            raise SendFailed("timeout", type(exc).__name__) from None
        except aiohttp.ClientConnectorError as exc:
            raise SendFailed("connect", type(exc).__name__) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SendFailed("broken", type(exc).__name__) from None
        read = {"retry-after": retry_after} if retry_after is not None else {}
        return Reply(response.status, read, content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # let aiohttp close its transports


class Http1Sender:
    """The lean keep-alive client (`service.http1`): the production default."""

    def __init__(self, url: str, max_connections: int, timeout: float) -> None:
        parts = urlsplit(url)
        self._path = parts.path or "/"
        self._pool = Http1Pool(f"{parts.scheme}://{parts.netloc}", max_connections=max_connections,
                               connect_timeout=min(timeout, 5.0))  # fmt: skip

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        try:
            status, answer_headers, content = await self._pool.post(self._path, body, headers)
        except TimeoutError as exc:
            raise SendFailed("timeout", type(exc).__name__) from None
        except Http1Error as exc:
            raise SendFailed("connect" if exc.kind == "connect" else "broken", str(exc)) from None
        retry_after = answer_headers.get("retry-after")
        return Reply(status, {"retry-after": retry_after} if retry_after else {}, content)

    async def aclose(self) -> None:
        await self._pool.aclose()


class HttpxSender:
    """Any httpx transport: the in-process emulator, or respx in tests."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: float) -> None:
        import httpx  # not needed by the production (aiohttp) path

        self._httpx = httpx
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        httpx = self._httpx
        try:
            response = await self._client.post(url, content=body, headers=dict(headers))
        except httpx.TimeoutException as exc:
            raise SendFailed("timeout", type(exc).__name__) from None
        except httpx.ConnectError as exc:
            raise SendFailed("connect", type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise SendFailed("broken", type(exc).__name__) from None
        retry_after = response.headers.get("retry-after")
        read = {"retry-after": retry_after} if retry_after is not None else {}
        return Reply(response.status_code, read, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()
