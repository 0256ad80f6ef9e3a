"""The one upstream client: mints client secrets on OpenAI's GA endpoint.

One instance per process, created in the app's lifespan, over one pooled
connection pool (`service.transport`: the lean HTTP/1.1 client in production,
aiohttp behind a proxy, an httpx transport for the in-process emulator and for
respx in tests).

Every way the upstream can fail is translated here, and only here, into the
service's errors:

- connect failure or 5xx: retried (bounded, full jitter), then 502;
- 401/403: 502 and a loud log line, because the *server's* key is bad;
- 429: 429 with OpenAI's Retry-After passed on;
- other 4xx: 400 carrying OpenAI's reason (the session was refused);
- no answer within `UPSTREAM_TIMEOUT_SECONDS` (all attempts together): 504;
- non-JSON, or no `value`/`expires_at`: 502.

The key travels only in the request header; it never enters a log field, an
error message or a response.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import orjson
import structlog

from service import metrics

if TYPE_CHECKING:
    import httpx
from service.config import Settings
from service.errors import (
    InvalidRequest,
    RateLimited,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
)
from service.transport import AiohttpSender, Http1Sender, HttpxSender, Reply, Sender, SendFailed

log = structlog.get_logger("service.upstream")
RETRY_BASE_SECONDS = 0.05
EMULATOR_BASE_URL = "http://emulator.invalid/v1"
"""Where the in-process emulator is reached (never resolved: ASGITransport serves it)."""


@dataclass(frozen=True, slots=True)
class Minted:
    """A client secret as OpenAI returned it. `value` is a secret: never log it."""

    value: str
    expires_at: int
    session: dict[str, Any]
    upstream_status: int
    upstream_ms: float
    attempts: int

    def __repr__(self) -> str:
        return f"Minted(value='ek_***', expires_at={self.expires_at}, attempts={self.attempts})"


class _Retry(Exception):
    """An attempt failed in a way worth trying again; `error` is what to raise if not."""

    def __init__(self, error: ServiceError) -> None:
        self.error = error


def build_sender(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Sender:
    """The lean client in production (aiohttp behind a proxy); httpx for emulator and tests."""
    if transport is not None:
        return HttpxSender(transport, settings.upstream_timeout_seconds)
    if settings.upstream_emulator:
        import httpx

        from service.emulator import create_emulator

        return HttpxSender(
            httpx.ASGITransport(app=create_emulator()), settings.upstream_timeout_seconds
        )
    base = settings.openai_base_url
    if _proxied(base):
        return AiohttpSender(settings.upstream_max_connections, settings.upstream_timeout_seconds)
    url = base.rstrip("/") + "/realtime/client_secrets"
    return Http1Sender(url, settings.upstream_max_connections, settings.upstream_timeout_seconds)


def _proxied(url: str) -> bool:
    """Whether HTTP(S)_PROXY / ALL_PROXY applies to `url` (and NO_PROXY does not exempt it)."""
    parts = urlsplit(url)
    proxies = getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(parts.hostname or "")


class Upstream:
    """Mints client secrets; one instance per process, closed at shutdown."""

    def __init__(self, settings: Settings, sender: Sender) -> None:
        self._timeout = settings.upstream_timeout_seconds
        self._retries = settings.upstream_max_retries
        base_url = EMULATOR_BASE_URL if settings.upstream_emulator else settings.openai_base_url
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        auth = (
            {"api-key": key}
            if settings.upstream_api_type == "azure"
            else {"Authorization": f"Bearer {key}"}
        )
        self._url = base_url.rstrip("/") + "/realtime/client_secrets"
        self._headers = {**auth, "Content-Type": "application/json"}
        self._sender = sender

    async def aclose(self) -> None:
        """Close the pool (in-flight requests have finished by shutdown)."""
        await self._sender.aclose()

    async def mint_client_secret(self, body: dict[str, Any], request_id: str) -> Minted:
        """POST the GA body; return the secret or raise the matching `ServiceError`."""
        content = orjson.dumps(body)
        headers = {**self._headers, "X-Request-ID": request_id, "X-Client-Request-Id": request_id}
        started = time.perf_counter()
        try:
            minted = await self._mint(content, headers, started)
        except ServiceError as error:
            metrics.UPSTREAM_ERRORS.labels(error.code or "unknown").inc()
            if isinstance(error, RateLimited):
                metrics.RATE_LIMITED.labels("upstream").inc()
            raise
        metrics.UPSTREAM_LATENCY.observe(minted.upstream_ms / 1000)
        return minted

    async def _mint(self, content: bytes, headers: dict[str, str], started: float) -> Minted:
        attempt = 0
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    attempt += 1
                    try:
                        return await self._attempt(content, headers, started, attempt)
                    except _Retry as retry:
                        if attempt > self._retries:
                            raise retry.error from None
                        await asyncio.sleep(random.uniform(0, RETRY_BASE_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto
        except TimeoutError:
            log.warning("upstream_timeout", attempts=attempt, timeout_s=self._timeout)
            raise UpstreamTimeout(
                f"OpenAI did not answer within {self._timeout:g}s", code="upstream_timeout"
            ) from None

    async def _attempt(
        self, content: bytes, headers: dict[str, str], started: float, attempt: int
    ) -> Minted:
        try:
            response = await self._sender.post(self._url, content, headers)
        except SendFailed as failed:
            if failed.kind == "timeout":
                raise TimeoutError from None
            log.warning("upstream_send_failed", kind=failed.kind, detail=failed.detail)
            if failed.kind == "connect":
                raise _Retry(
                    UpstreamError("OpenAI is unreachable", code="upstream_unreachable")
                ) from None
            raise _Retry(
                UpstreamError("the connection to OpenAI failed", code="upstream_connection")
            ) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        status = response.status
        if status >= 500:
            log.warning("upstream_5xx", upstream_status=status, attempt=attempt)
            raise _Retry(
                UpstreamError(f"OpenAI failed with HTTP {status}", code="upstream_server_error")
            )
        if status in (401, 403):
            log.error(
                "upstream_rejected_server_key",
                upstream_status=status,
                hint="the OPENAI_API_KEY configured on this server was refused",
            )
            raise UpstreamError(
                "OpenAI refused this server's credentials; the operator must fix "
                "the server's API key",
                code="upstream_auth_failed",
            )
        if status == 429:
            retry_after = response.headers.get("retry-after")
            raise RateLimited(
                "OpenAI rate-limited this server; retry later",
                code="upstream_rate_limited",
                headers={"Retry-After": retry_after} if retry_after else None,
            )
        if status >= 400:
            raise _rejected(response)
        return _minted(response, elapsed_ms, attempt)


def _rejected(response: Reply) -> ServiceError:
    """OpenAI refused the session itself: pass its reason on as a 400."""
    message, param, code = f"HTTP {response.status}", None, None
    try:
        error = orjson.loads(response.body).get("error") or {}
        message = str(error.get("message") or message)
        param = error.get("param") if isinstance(error.get("param"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
    except (orjson.JSONDecodeError, AttributeError):
        pass
    log.warning("upstream_refused_session", upstream_status=response.status, param=param)
    return InvalidRequest(
        f"OpenAI refused the session: {message}", param=param, code=code or "upstream_rejected"
    )


def _minted(response: Reply, elapsed_ms: float, attempt: int) -> Minted:
    try:
        data = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "OpenAI answered with something that is not JSON", code="upstream_bad_response"
        ) from None
    value = data.get("value") if isinstance(data, dict) else None
    expires_at = data.get("expires_at") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value or not isinstance(expires_at, int):
        raise UpstreamError("OpenAI's answer has no client secret", code="upstream_bad_response")
    session = data.get("session")
    return Minted(
        value,
        expires_at,
        session if isinstance(session, dict) else {},
        response.status,
        elapsed_ms,
        attempt,
    )
