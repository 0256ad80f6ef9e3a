"""One error hierarchy, rendered once into OpenAI's error envelope.

Every failure a caller can see is a `ServiceError` subclass carrying its HTTP
status and the four envelope fields (`message`, `type`, `param`, `code`). The
official `openai` SDKs map status codes to typed exceptions
(`BadRequestError`, `PermissionDeniedError`, ...) and read the envelope, so a
client pointed at this service gets the same errors it would from OpenAI.

Each subclass also carries its `outcome` (the bounded label metrics count it
under) and a one-line `summary` (what the OpenAPI document says about its
status), so neither restates this table. `render` is the one place an error
becomes an HTTP response: FastAPI's exception handlers and the request
middleware (for the unexpected) both call it.

Messages are written for the caller and never include credentials: the API key,
client secrets and caller keys are never interpolated into an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from starlette.responses import Response


class ServiceError(Exception):
    """Base error: an HTTP status plus OpenAI's envelope fields."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None
    outcome: ClassVar[str] = "error"
    """The bounded label metrics count this error under."""
    summary: ClassVar[str] = "The service failed."
    """What this status means, for the OpenAPI document."""
    documented: ClassVar[bool] = True
    """Whether a mint endpoint's caller can receive it (and so the OpenAPI lists it)."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def envelope(self) -> dict[str, Any]:
        """The body OpenAI's SDKs parse: `{"error": {message, type, param, code}}`."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}

    def body(self) -> bytes:
        """The envelope serialised once, as sent on the wire."""
        return orjson.dumps(self.envelope())


class InvalidRequest(ServiceError):
    """400: the body is not a valid request (bad JSON, unknown field, out of range)."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_value"
    outcome = "invalid"
    summary = "Invalid input (malformed JSON, unknown field, wrong type, out of range)."


class Unauthenticated(ServiceError):
    """401: no caller credential, or one that does not verify."""

    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"
    outcome = "unauthenticated"
    summary = "Missing or invalid caller credentials."


class PolicyViolation(ServiceError):
    """403: the request is well formed, but the server's policy does not allow it.

    `found` holds every violation as `(param, message)`, so one refusal
    answers them all, and a door can name each field as its callers spell it.
    """

    status_code = 403
    error_type = "permission_error"
    default_code = "policy_violation"
    outcome = "policy_violation"
    summary = "Policy violation; `error.violations` lists each field."

    def __init__(self, found: Sequence[tuple[str, str]]) -> None:
        super().__init__(
            "Policy violation: " + "; ".join(f"{param}: {message}" for param, message in found),
            param=found[0][0] if found else None,
            extra={"violations": [{"param": p, "message": m} for p, m in found]},
        )
        self.found = tuple(found)


class Suspended(ServiceError):
    """403: an operator suspended this caller (`POST /admin/callers/{identity}/suspend`)."""

    status_code = 403
    error_type = "permission_error"
    default_code = "caller_suspended"
    outcome = "suspended"
    summary = "The caller is suspended by the operator until the time `Retry-After` says."


class NotFound(ServiceError):
    """404: no such route, or no open call with this id that this caller created.

    A call that exists but is someone else's gets the same answer as one that
    never existed (`call_not_found`), so ids reveal nothing.
    """

    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"
    documented = False
    outcome = "not_found"
    summary = "No such route, or no open call with this id created by this caller."


class MethodNotAllowed(ServiceError):
    """405: the route exists but not for this method."""

    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"
    outcome = "method_not_allowed"
    summary = "The route does not take this method."


class PayloadTooLarge(ServiceError):
    """413: the body exceeds the configured limit; it is not read further."""

    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"
    outcome = "too_large"
    summary = "Body larger than MAX_BODY_BYTES."


class UnsupportedMediaType(ServiceError):
    """415: the body is not declared in a media type the endpoint takes.

    JSON (`Content-Type: application/json`) everywhere but `POST
    /v1/realtime/calls`, which takes `multipart/form-data` or
    `application/sdp`. Requiring it also means a cross-site "simple" request
    (text/plain), which browsers send without a CORS preflight, never reaches
    a mint.
    """

    status_code = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"
    outcome = "unsupported_media_type"
    summary = (
        "The body is not sent as application/json (a Realtime call's offer: "
        "multipart/form-data or application/sdp)."
    )


class ClientDisconnected(ServiceError):
    """499: the client closed the connection before its request was complete.

    Nobody reads the answer; the status exists for the log line and metrics
    (nginx's convention), and to stop the request before anything is minted.
    """

    status_code = 499
    error_type = "invalid_request_error"
    default_code = "client_closed_request"
    outcome = "client_closed"
    summary = "The client closed the connection early."
    documented = False


class RateLimited(ServiceError):
    """429: a rate limit or quota (ours or upstream's) is exhausted; see Retry-After."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"
    outcome = "rate_limited"
    summary = "Rate limit or quota exhausted (ours or OpenAI's); see Retry-After."


class UpstreamError(ServiceError):
    """502: OpenAI failed, refused our key, or answered something we cannot use."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"
    outcome = "upstream_error"
    summary = "OpenAI failed, refused the server's key, or answered without a secret."


class CallIdReused(UpstreamError):
    """502: OpenAI answered a call's creation with the id of a call the service already
    supervises (another caller's, or another of this caller's): the new call is refused, the
    recorded one is left untouched."""

    default_code = "upstream_call_id_reused"


class ServiceUnavailable(ServiceError):
    """503: something the service needs to decide is unavailable (`service.store`'s
    `StoreUnavailable`: the shared store did not answer in time); see Retry-After."""

    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"
    outcome = "unavailable"
    summary = "The shared store (Redis) is unavailable; retry after Retry-After."


class UpstreamTimeout(ServiceError):
    """504: OpenAI did not answer within UPSTREAM_TIMEOUT_SECONDS."""

    status_code = 504
    error_type = "upstream_error"
    default_code = "upstream_timeout"
    outcome = "upstream_timeout"
    summary = "OpenAI did not answer in time."


class InternalError(ServiceError):
    """500: a bug in this service. Rendered without details; the log has them."""

    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"
    outcome = "internal_error"
    summary = "A bug in this service; the log has the details."


def render(error: ServiceError) -> Response:
    """The one place an error becomes an HTTP response: OpenAI's envelope, as JSON."""
    return Response(
        error.body(),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/json",
    )


def caller_errors() -> list[type[ServiceError]]:
    """Every error class, in status order (`documented` says which a caller can see)."""
    found: list[type[ServiceError]] = []
    pending = list(ServiceError.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.status_code)
