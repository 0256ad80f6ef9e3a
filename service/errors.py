"""One error hierarchy, rendered once into OpenAI's error envelope.

Every failure a caller can see is a `ServiceError` subclass carrying its HTTP
status and the four envelope fields (`message`, `type`, `param`, `code`). The
official `openai` SDKs map status codes to typed exceptions
(`BadRequestError`, `PermissionDeniedError`, ...) and read the envelope, so a
client pointed at this service gets the same errors it would from OpenAI.

Messages are written for the caller and never include credentials: the API key,
client secrets and caller keys are never interpolated into an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson


class ServiceError(Exception):
    """Base error: an HTTP status plus OpenAI's envelope fields."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

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


class Unauthenticated(ServiceError):
    """401: no caller credential, or one that does not verify."""

    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PolicyViolation(ServiceError):
    """403: the request is well formed, but the server's policy does not allow it."""

    status_code = 403
    error_type = "permission_error"
    default_code = "policy_violation"


class NotFound(ServiceError):
    """404: no such route."""

    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(ServiceError):
    """405: the route exists but not for this method."""

    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLarge(ServiceError):
    """413: the body exceeds the configured limit; it is not read further."""

    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimited(ServiceError):
    """429: a rate limit or quota (ours or upstream's) is exhausted; see Retry-After."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(ServiceError):
    """502: OpenAI failed, refused our key, or answered something we cannot use."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"


class ServiceUnavailable(ServiceError):
    """503: a dependency we need to decide (the rate-limit store) is unreachable."""

    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class UpstreamTimeout(ServiceError):
    """504: OpenAI did not answer within UPSTREAM_TIMEOUT_SECONDS."""

    status_code = 504
    error_type = "upstream_error"
    default_code = "upstream_timeout"


class InternalError(ServiceError):
    """500: a bug in this service. Rendered without details; the log has them."""

    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"
