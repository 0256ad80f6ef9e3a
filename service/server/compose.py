"""What the app talks to: OpenAI over the network, or the built-in emulator in this process.

`create_app` takes its upstream as a transport and a sideband, the seams the
tests use too; this is the one place that chooses them. With
`UPSTREAM_EMULATOR=true` both lead into one in-process emulator: its ASGI app
serves the HTTP client (`httpx.ASGITransport`), and its call registry the
sidebands (an ASGI app has no socket for a WebSocket client to reach).
Otherwise the app's own network client and WebSocket sideband reach
`OPENAI_BASE_URL`.
"""

from __future__ import annotations

import httpx
import structlog
from fastapi import FastAPI

from service.api import create_app
from service.config import Settings
from service.contract.calls import CallKind
from service.upstream.sideband import Sideband, SidebandClosed, SidebandConnection

log = structlog.get_logger("service.server")


class NoSideband:
    """For an emulator without its call routes: every call reads as already ended."""

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        raise SidebandClosed("unknown_call")


def build_app(settings: Settings) -> FastAPI:
    """The service for `settings`, on the network or on the in-process emulator."""
    if not settings.upstream_emulator:
        return create_app(settings)
    from emulator import create_emulator  # the emulator: only when asked for

    emulator = create_emulator()
    sideband: Sideband
    try:
        sideband = emulator.sideband()
    except Exception as unavailable:  # the emulator's 501, without aiortc
        log.warning("emulator_sideband_unavailable", reason=type(unavailable).__name__)
        sideband = NoSideband()
    return create_app(settings, transport=httpx.ASGITransport(emulator), sideband=sideband)
