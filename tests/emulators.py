"""The in-process emulator as the emulator's own tests use it: fake media, an HTTP client.

Fake-media calls need no aiortc and answer at once; every call is hung up
when the context ends, so no test leaves a call (or its tasks) behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from emulator import Emulator, create_emulator


@asynccontextmanager
async def fake_media_emulator(
    usage_interval: float | None = None, transcript_interval: float | None = None
) -> AsyncIterator[Emulator]:
    """An in-process fake-media emulator; `usage_interval` None: no Live usage ticks;
    `transcript_interval` None: no Live transcript fragments."""
    app = create_emulator(
        fake_media=True, usage_interval=usage_interval, transcript_interval=transcript_interval
    )
    try:
        yield app
    finally:
        await app.calls.close()


@asynccontextmanager
async def emulator_client(app: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the in-process emulator `app`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        yield client
