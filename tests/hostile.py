"""A hostile upstream: OpenAI's call routes, with a sideband that misbehaves on purpose.

A real server (Starlette on uvicorn) the service reaches over real sockets,
with `OPENAI_BASE_URL` set to its `url` and any key. It answers

- `POST /v1/realtime/calls` (any body): 201, an SDP answer and
  `Location: /v1/realtime/calls/rtc_hostile_N`, as OpenAI does; the call
  takes the server's `mode` at that moment;
- `POST /v1/realtime/calls/{id}/hangup`: 200 while the call lives (it then
  ends), 404 after;
- `POST /_hostile/mode/{mode}` and `GET /_hostile/stats` (also `/healthz`):
  the mode new calls take, and what it saw, for a driver of the process;
- `GET /v1/realtime?call_id=` as a WebSocket: closed 4404 for a call that is
  not open (OpenAI's rule after a call ends), else by the call's mode:

  - `normal`: one `session.created`, then quiet until the call ends;
  - `accept_close`: accepted and closed at once (1000), every time;
  - `close_once`: one event then a normal close (1000) on the first
    attachment while the call lives; `normal` afterwards;
  - `oversize`: one frame over the service's 4 MiB limit, every time;
  - `unreadable`: `UNREADABLE_FRAMES` frames that are not JSON, one event,
    then quiet (`normal`);
  - `flood`: events as fast as the socket takes them (or `flood_rate` a
    second), until it closes.

Tests run it in a thread (`hostile_upstream()`) and read what it saw
(`handshakes`, `hangups`) as the service's peer; the bench runs it as a
process (`python -m tests.hostile --port N --mode flood`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

Mode = Literal["normal", "accept_close", "close_once", "oversize", "unreadable", "flood"]
SDP_ANSWER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\n"
UNREADABLE_FRAMES = 50
UNREADABLE = "not json " * 100
"""One unreadable frame (900 bytes)."""
OVERSIZE_BYTES = 5 * 1024 * 1024
FLOOD_EVENT = '{"type":"response.output_audio_transcript.delta","delta":"x"}'
FLOOD_BATCH = 64
"""Flood frames sent between two yields (so the server's own loop still answers)."""
CLOSE_UNKNOWN_CALL = 4404


@dataclass
class HostileCall:
    """One call: its mode, and whether it still lives."""

    mode: Mode
    open: bool = True
    attachments: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Hostile:
    """The server's state: the mode new calls take, the calls, and what it saw."""

    def __init__(self, mode: Mode = "normal", flood_rate: int = 0) -> None:
        self.mode: Mode = mode
        self.flood_rate = flood_rate
        """Flood frames a second per call; 0: as fast as the socket takes them."""
        self.calls: dict[str, HostileCall] = {}
        self.handshakes: Counter[str] = Counter()
        self.hangups: Counter[str] = Counter()
        """Hang-ups per call, 404s included."""
        self.frames_sent: Counter[str] = Counter()
        self.connected: Counter[str] = Counter()
        """Sideband sockets open now, per call: 0 once the service let go of them."""
        self._ids = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/realtime/calls", self.create, methods=["POST"]),
                Route("/v1/realtime/calls/{call_id}/hangup", self.hang_up, methods=["POST"]),
                WebSocketRoute("/v1/realtime", self.sideband),
                Route("/_hostile/mode/{mode}", self.set_mode, methods=["POST"]),
                Route("/_hostile/stats", self.stats),
                Route("/healthz", self.stats),
            ]
        )

    async def set_mode(self, request: Request) -> Response:
        """The mode calls created from now on take (for a process: `--mode` at start)."""
        self.mode = request.path_params["mode"]
        return Response("{}", media_type="application/json")

    async def stats(self, request: Request) -> Response:
        """What the server saw, for a process's driver (a thread's reads the attributes)."""
        return JSONResponse(
            {
                "open": sum(call.open for call in self.calls.values()),
                "handshakes": sum(self.handshakes.values()),
                "hangups": sum(self.hangups.values()),
                "frames_sent": sum(self.frames_sent.values()),
            }
        )

    async def create(self, request: Request) -> Response:
        self.loop = asyncio.get_running_loop()
        await request.body()
        call_id = f"rtc_hostile_{next(self._ids)}"
        self.calls[call_id] = HostileCall(self.mode)
        headers = {"Location": f"/v1/realtime/calls/{call_id}"}
        return Response(SDP_ANSWER, 201, headers=headers, media_type="application/sdp")

    async def hang_up(self, request: Request) -> Response:
        call_id = request.path_params["call_id"]
        self.hangups[call_id] += 1
        call = self.calls.get(call_id)
        if call is None or not call.open:
            return Response('{"error": {"message": "No such call."}}', 404)
        self._end(call)
        return Response("{}", 200, media_type="application/json")

    def end(self, call_id: str) -> None:
        """The call ends upstream (the browser left), from any thread."""
        assert self.loop is not None, "no call was created"
        self.loop.call_soon_threadsafe(self._end, self.calls[call_id])

    @staticmethod
    def _end(call: HostileCall) -> None:
        call.open = False
        call.ended.set()

    async def sideband(self, websocket: WebSocket) -> None:
        call_id = websocket.query_params.get("call_id", "")
        self.handshakes[call_id] += 1
        await websocket.accept()
        call = self.calls.get(call_id)
        if call is None or not call.open:
            await websocket.close(CLOSE_UNKNOWN_CALL)
            return
        call.attachments += 1
        mode = call.mode
        if mode == "close_once" and call.attachments > 1:
            mode = "normal"
        self.connected[call_id] += 1
        try:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self._misbehave(websocket, call_id, call, mode)
        finally:
            self.connected[call_id] -= 1

    async def _misbehave(
        self, websocket: WebSocket, call_id: str, call: HostileCall, mode: Mode
    ) -> None:
        if mode == "accept_close":
            await websocket.close(1000)
            return
        if mode == "oversize":
            await websocket.send_text("x" * OVERSIZE_BYTES)
            await websocket.receive()
            return
        if mode == "unreadable":
            for _ in range(UNREADABLE_FRAMES):
                await websocket.send_text(UNREADABLE)
        if mode == "flood":
            pause_s = FLOOD_BATCH / self.flood_rate if self.flood_rate else 0.0
            while call.open:
                for _ in range(FLOOD_BATCH):
                    await websocket.send_text(FLOOD_EVENT)
                self.frames_sent[call_id] += FLOOD_BATCH
                await asyncio.sleep(pause_s)
            await websocket.close(1000)
            return
        await websocket.send_text('{"type": "session.created", "session": {}}')
        if mode == "close_once":
            await websocket.close(1000)
            return
        ended = asyncio.ensure_future(call.ended.wait())
        gone = asyncio.ensure_future(self._until_disconnect(websocket))
        await asyncio.wait({ended, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ended, gone):
            task.cancel()
        if call.ended.is_set():
            await websocket.close(1000)

    @staticmethod
    async def _until_disconnect(websocket: WebSocket) -> None:
        """Read (and ignore) the service's client events until it goes."""
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass


class HostileServer:
    """`Hostile` served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, hostile: Hostile, port: int) -> None:
        self.hostile = hostile
        self.url = f"http://127.0.0.1:{port}/v1"
        config = uvicorn.Config(
            hostile.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the hostile upstream did not start")
            self._thread.join(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()


@contextlib.contextmanager
def hostile_upstream(mode: Mode = "normal") -> Iterator[HostileServer]:
    """A hostile upstream in a thread on a free port, stopped after."""
    from tests.servers import free_port

    server = HostileServer(Hostile(mode), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    """Serve a hostile upstream in this process: `python -m tests.hostile --port N --mode M`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="normal")
    parser.add_argument("--flood-rate", type=int, default=0, help="frames/s a call; 0: no limit")
    args = parser.parse_args()
    hostile = Hostile(args.mode, args.flood_rate)
    uvicorn.run(hostile.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
