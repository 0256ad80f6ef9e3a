"""What the emulator refuses, in OpenAI's error envelope.

OpenAI answers every refusal with `{"error": {"message", "type", "param",
"code"}}` and the SDKs read exactly that, so the emulator renders the same
envelope from one small hierarchy of its own: it stands in for OpenAI and
shares no code with the service, whose own errors it may be catching out.
Messages never quote a credential or an SDP offer.
"""

from __future__ import annotations

from typing import ClassVar

import orjson
from starlette.responses import Response
from starlette.types import Scope


class EmulatorError(Exception):
    """An HTTP status and OpenAI's four envelope fields."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def body(self) -> bytes:
        """The envelope as OpenAI sends it."""
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.error_type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        )

    def response(self) -> Response:
        """The envelope as a Starlette response, for the routes that answer with one."""
        return Response(self.body(), self.status_code, media_type="application/json")


class InvalidRequest(EmulatorError):
    """400: not a valid request (bad JSON, unknown parameter, wrong type, out of range)."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_value"


class MissingKey(EmulatorError):
    """401 without a key header; OpenAI types it `invalid_request_error`, not an auth error."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "missing_api_key"

    def __init__(self) -> None:
        super().__init__("You didn't provide an API key.")


def has_key(scope: Scope) -> bool:
    """Whether a key header came (`Authorization: Bearer …` or Azure's `api-key`); any key does."""
    headers = dict(scope["headers"])
    return headers.get(b"authorization", b"").startswith(b"Bearer ") or b"api-key" in headers


class NotFound(EmulatorError):
    """404: no such route, or nothing with that id."""

    status_code = 404
    error_type = "invalid_request_error"


class RateLimited(EmulatorError):
    """429: the emulator holds as much as it allows."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class Conflict(EmulatorError):
    """409: the request does not fit the object's state (accepting a call no longer ringing)."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"
