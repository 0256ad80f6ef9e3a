"""What a flow is handed: the process's handles, one request as the edge read it, and its answer.

The HTTP edge (`service.api`) runs the prologue every endpoint shares
(`?dry_run`, the media type, the caller, the body within its limit) once and
hands the flow an `Incoming`; the flow answers with an `Answer` the edge
renders. Flows see no ASGI scope and build no HTTP response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.auth import Authenticator, Caller
from service.calls import Supervisor
from service.config import Settings
from service.limits import Limiter, Suspensions
from service.policy import Profiles
from service.store import Store
from service.upstream import Upstream


@dataclass(frozen=True, slots=True)
class Services:
    """The process's handles, built once by the lifespan and shared by every request."""

    settings: Settings
    profiles: Profiles
    """`settings.profiles`, read once: a pydantic private attribute costs a failed
    lookup on every access, on the hot path."""
    auth: Authenticator
    upstream: Upstream
    store: Store
    limiter: Limiter
    supervisor: Supervisor
    suspensions: Suspensions
    """Callers an operator suspended or whose calls they ended (`/admin`)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One request, as the edge read it."""

    caller: Caller
    body: bytes
    """The JSON body; for `POST /v1/realtime/calls`, the SDP offer."""
    dry_run: bool
    log: dict[str, Any]
    """The fields of the request's canonical log line (the audit line)."""
    session: bytes | None = None
    """`POST /v1/realtime/calls`' optional `session` part."""
    call_id: str = ""
    """The call id in the path (a hang-up, a call's state)."""
    model: str | None = None
    """A bare `application/sdp` offer's `?model=` (`POST /v1/realtime/calls`)."""

    @property
    def request_id(self) -> str:
        """The request's id, as logged and sent upstream."""
        rid: str = self.log["request_id"]
        return rid


@dataclass(frozen=True, slots=True)
class Answer:
    """What the edge answers: a JSON object, or an SDP answer (text), with its headers."""

    body: dict[str, Any] | str
    headers: Mapping[str, str]
    status: int = 200
