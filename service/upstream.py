"""The one upstream client: mints client secrets on OpenAI's GA endpoint.

One pooled `httpx.AsyncClient` per process, created in the app's lifespan. It
keeps httpx's API (so respx and `httpx.MockTransport` can stand in for OpenAI
in tests) over aiohttp's transport, which on this workload mints several times
faster than httpx's default transport (see the README's benchmark).

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
from typing import Any

import aiohttp
import httpx
import orjson
import structlog
from httpx_aiohttp import AiohttpTransport

from service import metrics
from service.config import Settings
from service.errors import (
    InvalidRequest,
    RateLimited,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
)

log = structlog.get_logger("service.upstream")
RETRY_BASE_SECONDS = 0.05


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


def build_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The production transport: aiohttp's pool, or the emulator in-process."""
    if settings.upstream_emulator:
        from service.emulator import create_emulator

        return httpx.ASGITransport(app=create_emulator())
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
        keepalive_expiry=30.0,
    )
    return AiohttpTransport(limits=limits)


class Upstream:
    """Mints client secrets; one instance per process, closed at shutdown."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport) -> None:
        self._timeout = settings.upstream_timeout_seconds
        self._retries = settings.upstream_max_retries
        base_url = "http://emulator/v1" if settings.upstream_emulator else settings.openai_base_url
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        auth = (
            {"api-key": key}
            if settings.upstream_api_type == "azure"
            else {"Authorization": f"Bearer {key}"}
        )
        self._url = base_url.rstrip("/") + "/realtime/client_secrets"
        self._client = httpx.AsyncClient(
            transport=transport,
            headers={**auth, "Content-Type": "application/json"},
            timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 5.0)),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the pool (in-flight requests have finished by shutdown)."""
        await self._client.aclose()

    async def mint_client_secret(self, body: dict[str, Any], request_id: str) -> Minted:
        """POST the GA body; return the secret or raise the matching `ServiceError`."""
        content = orjson.dumps(body)
        headers = {"X-Request-ID": request_id, "X-Client-Request-Id": request_id}
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
            response = await self._client.post(self._url, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            if _is_refused(exc):
                raise _Retry(
                    UpstreamError("OpenAI is unreachable", code="upstream_unreachable")
                ) from None
            raise TimeoutError from None
        except httpx.ConnectError:
            raise _Retry(
                UpstreamError("OpenAI is unreachable", code="upstream_unreachable")
            ) from None
        except httpx.TransportError as exc:
            log.warning("upstream_transport_error", kind=type(exc).__name__)
            raise _Retry(
                UpstreamError("the connection to OpenAI failed", code="upstream_connection")
            ) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        status = response.status_code
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


def _is_refused(exc: httpx.TimeoutException) -> bool:
    """aiohttp reports a refused connection as a connect 'timeout'; tell them apart."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(
        cause, aiohttp.ServerTimeoutError
    )


def _rejected(response: httpx.Response) -> ServiceError:
    """OpenAI refused the session itself: pass its reason on as a 400."""
    message, param, code = f"HTTP {response.status_code}", None, None
    try:
        error = orjson.loads(response.content).get("error") or {}
        message = str(error.get("message") or message)
        param = error.get("param") if isinstance(error.get("param"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
    except (orjson.JSONDecodeError, AttributeError):
        pass
    log.warning("upstream_refused_session", upstream_status=response.status_code, param=param)
    return InvalidRequest(
        f"OpenAI refused the session: {message}", param=param, code=code or "upstream_rejected"
    )


def _minted(response: httpx.Response, elapsed_ms: float, attempt: int) -> Minted:
    try:
        data = orjson.loads(response.content)
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
        response.status_code,
        elapsed_ms,
        attempt,
    )
