"""The wire under the upstream client: one pooled HTTP connection pool per process.

`Upstream` speaks to OpenAI through a `Sender`: POST bytes, get back status,
headers and body, or a `SendFailed` saying whether the connection could not be
made, timed out, or broke. Two senders exist:

- `AiohttpSender`, the production one: aiohttp's pool used directly. Measured
  on the mint path (one worker, 50 connections, see the README's benchmark),
  a request through httpx's `AsyncClient` cost ~300 µs of CPU, httpx's
  request/response objects over aiohttp's transport ~200 µs, and aiohttp on
  its own ~120 µs; the proxy's whole budget for 2x the Express route is ~250 µs.
- `HttpxSender`, over any httpx transport: the in-process emulator
  (`httpx.ASGITransport`) and, in tests, respx (`httpx.MockTransport`), which
  sees and checks every body exactly as the aiohttp sender would send it.

Both map their library's exceptions onto `SendFailed` here, so `upstream.py`
reasons about failures once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import aiohttp

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
    """aiohttp's connection pool, with connect and read timeouts."""

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
