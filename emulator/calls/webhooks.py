"""OpenAI's project webhooks as the emulator sends them: Standard Webhooks, signed, over httpx.

OpenAI signs each webhook per Standard Webhooks (`webhook-id`,
`webhook-timestamp`, `webhook-signature: v1,…` over `id.timestamp.body`)
with the project's `whsec_…` secret; the signature is the `standardwebhooks`
package's, the same code a receiver verifies with, never an HMAC written
here. A redelivery keeps its `webhook-id` and body and is signed afresh, as
OpenAI's retries are. `bad_signature` signs with a random other secret (a
forged delivery), `age_s` backdates the timestamp (a stale or replayed one).

One `httpx.AsyncClient` for the emulator's life, with an explicit timeout;
the transport is injectable (tests hand in `httpx.MockTransport`). A failed
delivery is reported (`status` None, the exception's class name), never
raised: the service being down is something a test observes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import structlog
from standardwebhooks import Webhook

from emulator.calls.events import new_id
from emulator.errors import InvalidRequest

log = structlog.get_logger("emulator.webhooks", component="emulator")
TIMEOUT_S = 10.0
"""How long a delivery may take; OpenAI's own wait is of this order."""


class WebhookNotConfigured(InvalidRequest):
    """400: a webhook was asked for, but the emulator has no `--webhook-url` or secret."""

    default_code = "webhook_not_configured"


@dataclass(slots=True)
class OutgoingWebhook:
    """One webhook: its `webhook-id`, event type and the exact body, kept for redelivery."""

    webhook_id: str
    event_type: str
    body: bytes
    statuses: list[int | None]
    """The service's answer to each delivery (None: no answer), in order."""

    def shown(self) -> dict[str, Any]:
        """What the controls return of it: ids, type and answers, never the body."""
        return {"id": self.webhook_id, "type": self.event_type, "statuses": self.statuses}


def event(event_type: str, data: Mapping[str, Any], created_at: int) -> bytes:
    """An event body as OpenAI's webhooks carry it (the SDK's `*WebhookEvent` shapes)."""
    return orjson.dumps(
        {
            "id": new_id("evt"),
            "object": "event",
            "created_at": created_at,
            "type": event_type,
            "data": dict(data),
        }
    )


class WebhookSender:
    """Signs and posts webhooks to one URL with one secret."""

    def __init__(
        self,
        url: str | None,
        secret: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._signer = Webhook(secret) if secret else None
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.clock = clock

    def now(self) -> int:
        """The current Unix time in seconds, on the sender's clock."""
        return int(self.clock())

    def require(self) -> tuple[str, Webhook]:
        """The URL and signer; `WebhookNotConfigured` (400) without a URL and secret."""
        if self.url is None or self._signer is None:
            raise WebhookNotConfigured(
                "The emulator sends webhooks only with --webhook-url and --webhook-secret."
            )
        return self.url, self._signer

    def new(self, event_type: str, data: Mapping[str, Any]) -> OutgoingWebhook:
        """A webhook not yet delivered; `WebhookNotConfigured` without a URL and secret."""
        self.require()
        return OutgoingWebhook(new_id("wh"), event_type, event(event_type, data, self.now()), [])

    async def deliver(
        self, webhook: OutgoingWebhook, *, bad_signature: bool = False, age_s: int = 0
    ) -> int | None:
        """Post it once, signed now (or `age_s` ago); the service's status, None if it failed."""
        url, signer = self.require()
        if bad_signature:
            signer = Webhook(secrets.token_bytes(24))
        timestamp = datetime.fromtimestamp(self.now() - age_s, UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook.webhook_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signer.sign(webhook.webhook_id, timestamp, webhook.body),
            "user-agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
        }
        status: int | None
        try:
            response = await self._http().post(url, content=webhook.body, headers=headers)
        except httpx.HTTPError as error:
            status = None
            log.warning("webhook_failed", webhook_id=webhook.webhook_id, error=type(error).__name__)
        else:
            status = response.status_code
            log.info("webhook_delivered", webhook_id=webhook.webhook_id, status=status)
        webhook.statuses.append(status)
        return status

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=TIMEOUT_S)
        return self._client

    async def close(self) -> None:
        """Close the client, if one was opened."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
