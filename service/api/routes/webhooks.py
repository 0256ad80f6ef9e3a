"""`POST /v1/webhooks/openai`: OpenAI's signed webhooks (phone calls, safety blocks).

Mounted only with `OPENAI_WEBHOOK_SECRET`: without it the URL is the 404 of
any unknown one. Verified per Standard Webhooks by the `standardwebhooks`
package (the spec's own verifier: `webhook-id`, `webhook-timestamp` within 5
minutes, `webhook-signature`), over the body exactly as received, before it
is parsed: a missing header, a wrong signature or a stale timestamp is a 401
in OpenAI's envelope and nothing else happens. The body is capped at
`MAX_WEBHOOK_BYTES` (an event is a few KB of SIP headers).

The flow (`service.sessions.phone`) answers at once: the accept runs in a
task of the supervisor, so OpenAI's wait never covers OpenAI's own accept.
Not in the OpenAPI document, which is the callers' API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from standardwebhooks import Webhook, WebhookVerificationError

from service.api.bodies import read_body
from service.api.deps import ServicesDep
from service.api.endpoint import render
from service.core.errors import Unauthenticated
from service.sessions import Answer
from service.sessions.phone import receive_webhook

WEBHOOK_PATH = "/v1/webhooks/openai"
MAX_WEBHOOK_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}


def webhook_router(secret: str) -> APIRouter:
    """The route, verifying with `secret` (the `whsec_...` value)."""
    verifier = Webhook(secret)
    router = APIRouter(tags=["webhooks"], include_in_schema=False)

    @router.post(WEBHOOK_PATH)
    async def receive_openai_webhook(request: Request, services: ServicesDep) -> Response:
        """One delivery: verified, then handled once (`service.sessions.phone`)."""
        fields: dict[str, Any] = request.state.log
        fields["endpoint"] = "webhooks_openai"
        body = await read_body(request.scope, request.receive, MAX_WEBHOOK_BYTES)
        headers = {
            name: request.headers.get(name, "")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        try:
            verifier.verify(body, headers, json_parse=False)
        except WebhookVerificationError as refused:
            fields["signature"] = str(refused)[:64]
            raise Unauthenticated(
                "The webhook's signature does not verify (OPENAI_WEBHOOK_SECRET).",
                code="invalid_signature",
            ) from None
        await receive_webhook(services, body, headers["webhook-id"][:256], fields)
        return render(Answer({}, NO_STORE))

    return router
