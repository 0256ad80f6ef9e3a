"""The in-process emulator as the service's upstream: its transport and its `Sideband`.

With `UPSTREAM_EMULATOR=true` the emulator runs in this process behind
`httpx.ASGITransport`, where there is no socket for `WebSocketSideband` to
dial; the supervisor attaches through the emulator's own in-process sideband
instead. The emulator shares no code with the service (it stands in for
OpenAI), so its sideband ends with its own `SidebandEnded` carrying the close
code OpenAI's socket would send; this adapter translates that code exactly
as `service.upstream.sideband` translates a real socket's close:

- the normal closure (1000): `ended`, which the supervisor confirms by
  attaching again: the emulator, as OpenAI, refuses an ended call's sideband
  (4404);
- OpenAI's 4404: `unknown_call`, the call was never there or is gone;
- anything else (this side detached): `dropped`.

Its telephone (`POST /_emulator/sip/incoming`) posts webhooks to the
service's own URL (`own_webhook_url`: HOST and PORT, a wildcard host dialled
on loopback), as OpenAI posts them to a deployment's public URL. Each worker
has its own emulator, so with WORKERS > 1 a webhook may reach a worker whose
emulator never rang that call (its accept is a 404): phone calls across
workers need the emulator as its own process (`python -m service emulator
--webhook-url … --webhook-secret …`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from emulator import create_emulator
from emulator.calls.errors import WebrtcUnavailable
from emulator.calls.sideband import (
    CLOSE_NORMAL,
    CLOSE_UNKNOWN_CALL,
    EmulatorSideband,
    EmulatorSidebandConnection,
    SidebandEnded,
)
from service.contract.calls import CallKind
from service.upstream.sideband import CloseReason, Sideband, SidebandClosed, SidebandConnection

log = structlog.get_logger("service.server")


def in_process(
    webhook_url: str | None = None, webhook_secret: str | None = None
) -> tuple[httpx.AsyncBaseTransport, Sideband]:
    """A fresh emulator: its ASGI app as the HTTP transport, its calls as the sidebands.

    Its telephone posts OpenAI's webhooks to `webhook_url` (the service's own
    endpoint, over the network as OpenAI's reach it), signed with `webhook_secret`.
    """
    emulator = create_emulator(webhook_url=webhook_url, webhook_secret=webhook_secret)
    sideband: Sideband
    try:
        sideband = EmulatedSideband(emulator.sideband())
    except WebrtcUnavailable as unavailable:  # without the call routes' modules
        log.warning("emulator_sideband_unavailable", reason=unavailable.message)
        sideband = NoSideband()
    return httpx.ASGITransport(emulator), sideband


WEBHOOK_PATH = "/v1/webhooks/openai"
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - dialled, not bound


def own_webhook_url(host: str, port: int) -> str:
    """The service's webhook endpoint as this machine dials it (a wildcard host on loopback)."""
    dialled = WILDCARDS.get(host, host)
    if ":" in dialled:
        dialled = f"[{dialled}]"
    return f"http://{dialled}:{port}{WEBHOOK_PATH}"


def _reason(ended: SidebandEnded) -> CloseReason:
    if ended.code == CLOSE_UNKNOWN_CALL:
        return "unknown_call"
    return "ended" if ended.code == CLOSE_NORMAL else "dropped"


class EmulatedSidebandConnection:
    """One attached in-process sideband, ending with the service's `SidebandClosed`."""

    def __init__(self, connection: EmulatorSidebandConnection) -> None:
        self._connection = connection

    async def recv(self) -> dict[str, Any]:
        """The call's next server event; `SidebandClosed` once the sideband is over."""
        try:
            return await self._connection.recv()
        except SidebandEnded as ended:
            raise SidebandClosed(_reason(ended)) from None

    async def send(self, event: Mapping[str, Any]) -> None:
        """Apply a client event, trusted; `SidebandClosed` if the sideband is over."""
        try:
            await self._connection.send(event)
        except SidebandEnded as ended:
            raise SidebandClosed(_reason(ended)) from None

    async def close(self) -> None:
        """Detach; the call goes on."""
        await self._connection.close()


class EmulatedSideband:
    """Opens in-process sidebands to the emulator's calls."""

    def __init__(self, sideband: EmulatorSideband) -> None:
        self._sideband = sideband

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        """Attach to an open call of this kind; `SidebandClosed("unknown_call")` otherwise."""
        try:
            connection = await self._sideband.connect(kind, call_id)
        except SidebandEnded as ended:
            raise SidebandClosed(_reason(ended)) from None
        return EmulatedSidebandConnection(connection)


class NoSideband:
    """For an emulator without its call routes: every call reads as already ended."""

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        """Refuse: without its call routes the emulator holds no call."""
        raise SidebandClosed("unknown_call")
