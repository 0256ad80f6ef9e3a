"""What the app talks to: OpenAI over the network, or the built-in emulator in this process.

`create_app` takes its upstream as a transport and a sideband, the seams the
tests use too; this is the one place that chooses them. With
`UPSTREAM_EMULATOR=true` both lead into one in-process emulator: its ASGI app
serves the HTTP client (`httpx.ASGITransport`), and its call registry the
sidebands through `emulated.EmulatedSideband` (an ASGI app has no socket
for a WebSocket client to reach); its telephone posts webhooks to this
service's own URL, signed with `OPENAI_WEBHOOK_SECRET`.
Otherwise the app's own network client and WebSocket sideband reach
`OPENAI_BASE_URL`.
"""

from __future__ import annotations

from service.api import create_app
from service.api.dispatch import Dispatch
from service.config import Settings


def build_app(settings: Settings) -> Dispatch:
    """The service for `settings`, on the network or on the in-process emulator."""
    if not settings.upstream_emulator:
        return create_app(settings)
    # The emulator: only when asked for.
    from service.server.emulated import in_process, own_webhook_url

    webhook_url = own_webhook_url(settings.host, settings.port)
    transport, sideband = in_process(webhook_url, _webhook_secret(settings))
    return create_app(settings, transport=transport, sideband=sideband)


def _webhook_secret(settings: Settings) -> str | None:
    """`OPENAI_WEBHOOK_SECRET`'s value, or None (no secret: the telephone refuses to ring)."""
    secret = settings.openai_webhook_secret
    return secret.get_secret_value() if secret is not None else None
