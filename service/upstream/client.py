"""The one upstream client: mints client secrets on OpenAI's GA endpoint.

One `Upstream` per process, created in the app's lifespan over the one
`httpx.AsyncClient` that `service.upstream.http` builds (and whose failures
it classifies: sent or provably not).

Every way the upstream can fail is translated here, and only here, into the
service's errors. A mint is not idempotent (each one creates a secret, and a
secret opens sessions), so:

- a request that provably never reached the upstream (connection refused,
  DNS failure, TLS handshake failure, no connection within the connect
  timeout) is retried, bounded, with full jitter, then answered 502;
- a request whose body may have been sent is never retried: a broken
  exchange is a 502, a timed-out one a 504;
- 5xx: the upstream answered, so the exchange is over: 502, not retried;
- 401/403: 502 and a loud log line, because the *server's* key is bad;
- 429: 429 with OpenAI's Retry-After passed on;
- other 4xx: 400 carrying OpenAI's reason (the session was refused);
- no answer within `UPSTREAM_TIMEOUT_SECONDS` (all attempts together): 504;
- an answer over `MAX_ANSWER_BYTES` (1 MiB), non-JSON, or without
  `value`/`expires_at`: 502. An oversized answer is never held whole.

The key travels only in the request header; it never enters a log field, an
error message or a response.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson
import structlog

from service.config import Settings
from service.core import metrics
from service.core.errors import (
    InvalidRequest,
    RateLimited,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
)
from service.core.logs import scrub
from service.upstream.http import never_sent, read_capped, timed_out

log = structlog.get_logger("service.upstream")
T = TypeVar("T")
RETRY_BASE_SECONDS = 0.05
MAX_RELAYED_CHARS = 300
"""The most of an upstream error message (or param) passed on to a caller."""
ERROR_KINDS = frozenset(
    {
        "upstream_unreachable",
        "upstream_timeout",
        "upstream_connection",
        "upstream_server_error",
        "upstream_auth_failed",
        "upstream_rate_limited",
        "upstream_bad_response",
        "upstream_rejected",
    }
)
"""Metric labels for upstream failures: a fixed set, whatever codes an upstream invents."""
CODE = re.compile(r"^[a-z0-9_]{1,64}$")


@dataclass(frozen=True, slots=True)
class Reply:
    """An upstream answer read within the size cap: status, headers, raw body."""

    status: int
    headers: httpx.Headers
    body: bytes


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


class _NeverSent(Exception):
    """The request provably never reached the upstream: safe to try again.

    `kind` says how (`connect`, `connect_timeout`), `error` names the failure's class.
    """

    def __init__(self, kind: str, error: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.error = error


class Upstream:
    """OpenAI, as the service uses it; one instance per process, closed at shutdown."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self._timeout = settings.upstream_timeout_seconds
        self._retries = settings.upstream_max_retries
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        auth = (
            {"api-key": key}
            if settings.upstream_api_type == "azure"
            else {"Authorization": f"Bearer {key}"}
        )
        self._key = key
        self._base_url = settings.openai_base_url.rstrip("/")
        self._url = self.url("realtime/client_secrets")
        self._translation_url = self.url("realtime/translations/client_secrets")
        self._headers = {**auth, "Content-Type": "application/json", "Accept": "application/json"}
        self._request_timeout = client.timeout.as_dict()
        self._client = client

    @property
    def key_headers(self) -> dict[str, str]:
        """The server's key as OpenAI (or Azure) expects it, for the sideband's handshake."""
        return {k: v for k, v in self._headers.items() if k in ("Authorization", "api-key")}

    async def aclose(self) -> None:
        """Close the pool (in-flight requests have finished by shutdown)."""
        await self._client.aclose()

    async def mint_client_secret(
        self, body: dict[str, Any], request_id: str, translation: bool = False
    ) -> Minted:
        """POST the GA body; return the secret or raise the matching `ServiceError`.

        `translation` mints on `/realtime/translations/client_secrets`, OpenAI's
        endpoint for translation sessions; every other session uses
        `/realtime/client_secrets`.
        """
        url = self._translation_url if translation else self._url
        return await self.exchange(url, orjson.dumps(body), request_id, "application/json", _minted)

    def url(self, path: str) -> httpx.URL:
        """An upstream URL under `OPENAI_BASE_URL` (OpenAI's, Azure's, or an emulator's)."""
        return httpx.URL(f"{self._base_url}/{path}")

    async def exchange(
        self,
        url: httpx.URL,
        content: bytes,
        request_id: str,
        content_type: str | None,
        read: Callable[[Reply, float, int], T],
        missing: ServiceError | None = None,
    ) -> T:
        """One POST under this module's rules, its 2xx answer read by `read(reply, ms, attempts)`.

        Every failure, `read`'s included (an answer without what it must
        carry), is raised as the matching `ServiceError` and counted in
        `rtp_upstream_errors_total`; a 404 as `missing` when given (a call
        that no longer exists). Retried only while it provably never left.
        """
        headers = {**self._headers, "X-Request-ID": request_id, "X-Client-Request-Id": request_id}
        if content_type is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        try:
            reply, attempts = await self._post(url, content, headers)
            if reply.status == 404 and missing is not None:
                raise missing
            _judge(reply, self._key)
            elapsed_ms = (time.perf_counter() - started) * 1000
            answer = read(reply, elapsed_ms, attempts)
        except ServiceError as error:
            kind = error.code if error.code in ERROR_KINDS else "upstream_rejected"
            metrics.UPSTREAM_ERRORS.labels(kind).inc()
            if isinstance(error, RateLimited):
                metrics.RATE_LIMITED.labels("upstream").inc()
            raise
        metrics.UPSTREAM_LATENCY.observe(elapsed_ms / 1000)
        return answer

    async def _post(
        self, url: httpx.URL, content: bytes, headers: Mapping[str, str]
    ) -> tuple[Reply, int]:
        """The answer to one POST, retried only while it provably never left."""
        attempt = 0
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    attempt += 1
                    try:
                        return await self._send(url, content, headers), attempt
                    except _NeverSent as failed:
                        log.warning(
                            "upstream_unreachable",
                            host=url.host,
                            kind=failed.kind,
                            error=failed.error,
                            attempt=attempt,
                        )
                        if attempt > self._retries:
                            raise UpstreamError(
                                "OpenAI is unreachable", code="upstream_unreachable"
                            ) from None
                        await asyncio.sleep(random.uniform(0, RETRY_BASE_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto
        except TimeoutError:
            log.warning("upstream_timeout", attempts=attempt, timeout_s=self._timeout)
            raise UpstreamTimeout(
                f"OpenAI did not answer within {self._timeout:g}s", code="upstream_timeout"
            ) from None

    async def _send(self, url: httpx.URL, content: bytes, headers: Mapping[str, str]) -> Reply:
        """One exchange, its answer read within `MAX_ANSWER_BYTES` (`exchange` judges it)."""
        request = httpx.Request(
            "POST",
            url,
            headers=headers,
            content=content,
            extensions={"timeout": self._request_timeout},
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                body = await read_capped(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            kind = never_sent(exc)
            if kind:
                raise _NeverSent(kind, type(exc).__name__) from None
            if timed_out(exc):
                raise TimeoutError from None
            log.warning("upstream_exchange_broken", error=type(exc).__name__)
            raise UpstreamError(
                "the connection to OpenAI broke before it answered", code="upstream_connection"
            ) from None
        return Reply(response.status_code, response.headers, body)


def _judge(reply: Reply, key: str) -> None:
    """Raise the caller's error for an upstream status that is not a success."""
    status = reply.status
    if status >= 500:
        log.warning("upstream_5xx", upstream_status=status)
        raise UpstreamError(f"OpenAI failed with HTTP {status}", code="upstream_server_error")
    if status in (401, 403):
        log.error(
            "upstream_rejected_server_key",
            upstream_status=status,
            hint="the OPENAI_API_KEY configured on this server was refused",
        )
        raise UpstreamError(
            "OpenAI refused this server's credentials; the operator must fix the server's API key",
            code="upstream_auth_failed",
        )
    if status == 429:
        retry_after = reply.headers.get("retry-after")
        raise RateLimited(
            "OpenAI rate-limited this server; retry later",
            code="upstream_rate_limited",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    if status >= 400:
        raise _rejected(reply, key)


def relayable(text: str, key: str) -> str:
    """Upstream text fit to show a caller: no key, nothing key-shaped, bounded.

    An upstream or an intermediary may echo request headers into its error
    text; the server's key must not travel back to the caller that way.
    """
    if key:
        text = text.replace(key, "***")
    text = scrub(text.encode("utf-8", "replace")).decode("utf-8", "replace")
    return text if len(text) <= MAX_RELAYED_CHARS else text[:MAX_RELAYED_CHARS] + "…"


def _rejected(reply: Reply, key: str) -> ServiceError:
    """OpenAI refused the session itself: pass its reason on as a 400, made safe to relay."""
    message, param, code = f"HTTP {reply.status}", None, None
    try:
        error = orjson.loads(reply.body).get("error") or {}
        message = str(error.get("message") or message)
        param = error.get("param") if isinstance(error.get("param"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
    except (orjson.JSONDecodeError, AttributeError):
        pass
    param = relayable(param, key) if param else None
    code = code if code and CODE.match(code) else None
    log.warning("upstream_refused_session", upstream_status=reply.status, param=param)
    return InvalidRequest(
        f"OpenAI refused the session: {relayable(message, key)}",
        param=param,
        code=code or "upstream_rejected",
    )


def _minted(reply: Reply, elapsed_ms: float, attempts: int) -> Minted:
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "OpenAI answered with something that is not JSON", code="upstream_bad_response"
        ) from None
    value = data.get("value") if isinstance(data, dict) else None
    expires_at = data.get("expires_at") if isinstance(data, dict) else None
    if (
        not isinstance(value, str)
        or not value
        or not isinstance(expires_at, int)
        or isinstance(expires_at, bool)  # JSON true is no timestamp
    ):
        raise UpstreamError("OpenAI's answer has no client secret", code="upstream_bad_response")
    session = data.get("session")
    return Minted(
        value,
        expires_at,
        session if isinstance(session, dict) else {},
        reply.status,
        elapsed_ms,
        attempts,
    )
