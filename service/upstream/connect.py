"""The process's way to OpenAI: the one HTTP client and the sideband, built together.

With `UPSTREAM_EMULATOR=true` both lead into one in-process emulator: its
ASGI app serves the HTTP client, and its call registry the sidebands (an
ASGI app has no socket for a WebSocket client to reach).
"""

from __future__ import annotations

import httpx
import structlog

from service.config import Settings
from service.upstream.client import Upstream
from service.upstream.http import EMULATOR_BASE_URL, build_http_client
from service.upstream.sideband import (
    CallKind,
    Sideband,
    SidebandClosed,
    SidebandConnection,
    WebSocketSideband,
)

log = structlog.get_logger("service.upstream")


class NoSideband:
    """For an emulator without its call routes: every call reads as already ended."""

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        raise SidebandClosed("unknown_call")


def connect_upstream(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Upstream, Sideband]:
    """The `Upstream` and the `Sideband` for `settings` (`transport`: tests' mock)."""
    if transport is None and settings.upstream_emulator:
        from service.upstream.emulator import create_emulator

        emulator = create_emulator()
        upstream = Upstream(settings, build_http_client(settings, httpx.ASGITransport(emulator)))
        sideband: Sideband
        try:
            sideband = emulator.sideband()
        except Exception as unavailable:  # the emulator's 501, without aiortc
            log.warning("emulator_sideband_unavailable", reason=type(unavailable).__name__)
            sideband = NoSideband()
        return upstream, sideband
    upstream = Upstream(settings, build_http_client(settings, transport))
    base_url = EMULATOR_BASE_URL if settings.upstream_emulator else settings.openai_base_url
    return upstream, WebSocketSideband(base_url, upstream.key_headers)
