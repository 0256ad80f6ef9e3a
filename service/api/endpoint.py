"""One endpoint class: the prologue every POST endpoint shares, run once, then one flow.

In order: the caller (401; first, so every refusal's audit line names who
was refused), `?dry_run` (400 if not a boolean), the media type (415), a
bare offer's `?model=` (400 if empty, or beside a multipart body), a dry
run counted against RATE_LIMIT_DRY_RUN_PER_IDENTITY (before the body is read
or parsed, so refused dry runs count too: each costs the same work), the
body within its limit (413), then the flow (`service.sessions`) with a typed
`Incoming`, and its `Answer` rendered.

A plain ASGI app mounted as a Starlette `Route`, so the app's one set of
exception handlers renders its errors and `service.api.openapi` documents
it. It skips FastAPI's per-request dependency solving, which costs ~200 µs
of CPU per request with four async dependencies against ~3 µs for a plain
ASGI call (the hot path's whole budget is a few hundred µs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service.api.bodies import Body, Offer, dry_run_of
from service.auth import identify
from service.sessions import Answer, Incoming, Services

Flow = Callable[[Services, Incoming], Awaitable[Answer]]


class Endpoint:
    """A POST endpoint: the shared prologue, then `flow`; see the module docstring.

    `name` labels the request in its audit line and, for the endpoints that
    mint or create calls (`counted`), in `rtp_mints_total`. `dry_runs` says
    whether the endpoint takes `?dry_run=true`.
    """

    def __init__(
        self, name: str, flow: Flow, body: Body, *, counted: bool = True, dry_runs: bool = True
    ) -> None:
        self.name = name
        self._flow = flow
        self._body = body
        self._counted = counted
        self._dry_runs = dry_runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope["state"]
        services: Services = state["services"]
        fields: dict[str, Any] = state["log"]
        fields["endpoint"] = self.name
        if self._counted:
            state["counted_endpoint"] = self.name
        settings = services.settings
        caller = await identify(
            scope, services.auth, settings.trusted_proxies, fields, settings.auth_hash_identities
        )
        dry_run = self._dry_runs and dry_run_of(scope)
        self._body.check(scope)
        model = self._body.query_model(scope) if isinstance(self._body, Offer) else None
        if dry_run:
            fields["outcome"] = "dry_run"
            verdict = await services.limiter.check_dry_run(caller.identity)
            if verdict is not None:
                fields["rate_limit_remaining"] = verdict.remaining
        body, session = await self._body.read(scope, receive, settings)
        call_id: str = scope.get("path_params", {}).get("call_id", "")[:128]
        incoming = Incoming(caller, body, dry_run, fields, session, call_id, model)
        answer = await self._flow(services, incoming)
        await render(answer)(scope, receive, send)


def post(path: str, endpoint: Endpoint) -> Route:
    """The route of a POST endpoint (any other method gets 405)."""
    return Route(path, endpoint, methods=["POST"])


def render(answer: Answer) -> Response:
    """The flow's answer on the wire: JSON, or an SDP answer as `application/sdp`."""
    if isinstance(answer.body, str):
        return Response(answer.body, answer.status, answer.headers, media_type="application/sdp")
    return Response(
        orjson.dumps(answer.body), answer.status, answer.headers, media_type="application/json"
    )
