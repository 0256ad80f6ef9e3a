"""The one upstream HTTP client, and what its failures mean.

`build_http_client` makes the process's one `httpx.AsyncClient` (the
lifespan creates and closes it). Under it runs an aiohttp-backed httpx
transport (`httpx-aiohttp`), chosen by measurement (`bench/micro_upstream.py`):
at 50 concurrent mints httpx's own transport spent ~2.7 ms of CPU per request
here and served ~300 a second, the aiohttp transport ~0.4-0.5 ms. Proxies are
httpx's own: with `trust_env` it reads `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`
and `NO_PROXY` and mounts a proxied transport for the matching URLs. Tests and
the in-process emulator pass their own transport to the same factory.

`never_sent` and `timed_out` say what a failed request may have done, which
decides whether `service.upstream.client` may try it again; `read_capped`
reads an answer without ever holding more than `MAX_ANSWER_BYTES`.
"""

from __future__ import annotations

import aiohttp
import httpx
import structlog
from httpx_aiohttp import HttpxAiohttpClient

from service.config import Settings
from service.core.errors import UpstreamError

log = structlog.get_logger("service.upstream")
MAX_ANSWER_BYTES = 1 << 20
"""The largest upstream answer read; OpenAI's are a few KiB."""
KEEPALIVE_SECONDS = 5.0
"""Idle pooled connections are dropped before servers commonly close them."""


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: OpenAI's API sets no cookie a mint needs.

    httpx files every response's cookies into the client's jar, building
    urllib-style request and response wrappers for it each time: ~12% of a
    mint's CPU here. Keeping none also means no state shared between callers.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class UpstreamHttpClient(HttpxAiohttpClient):
    """httpx's client over the aiohttp transport, without a cookie jar."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, _cookies: object) -> None:
        return None


def build_http_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The process's one upstream HTTP client (the lifespan creates and closes it).

    `transport` replaces the network: respx's mock in tests, the emulator's
    ASGI app with `UPSTREAM_EMULATOR=true` (`service.server.compose`).
    Everything else (timeouts, pool, redirects off, proxies from the
    environment) is the same in every case.
    """
    timeout = settings.upstream_timeout_seconds
    return UpstreamHttpClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
        ),
        follow_redirects=False,
        trust_env=True,
    )


def never_sent(exc: httpx.TransportError) -> str | None:
    """How a failed request provably never reached the upstream, or None if it may have.

    The aiohttp transport maps every dropped connection, including one that
    broke after the body was written, onto `httpx.ConnectTimeout`, so its
    original exception decides: only aiohttp's connector errors (refused,
    DNS, TLS handshake, proxy connect) and its connect timeout happen before
    a byte is sent. Other transports (httpx's own, mocks) raise
    `ConnectError`/`ConnectTimeout`/`PoolTimeout` only before sending.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return "connect_timeout"
    if isinstance(cause, aiohttp.ClientError | OSError):
        return None
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"
    return None


def timed_out(exc: httpx.TransportError) -> bool:
    """Whether a request that may have been sent failed by waiting too long for its answer."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError | OSError):
        return isinstance(cause, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


async def read_capped(response: httpx.Response) -> bytes:
    """The decoded body, refused as soon as it exceeds `MAX_ANSWER_BYTES`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise _oversized()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _oversized()
        chunks.append(chunk)
    return b"".join(chunks)


def _oversized() -> UpstreamError:
    log.warning("upstream_answer_too_large", limit_bytes=MAX_ANSWER_BYTES)
    return UpstreamError(
        "OpenAI's answer exceeds the size this service reads", code="upstream_bad_response"
    )
