"""The server's connection limits: a bounded request head, read deadlines, a connection cap.

uvicorn's httptools protocol has none of the three. It buffers a request head
without limit (httptools concatenates a header value until it ends: one
200 MiB header took RSS from 68 to 459 MiB and was never answered), nothing
times out before a first response (a connection that sends nothing, or
drips its head or body, stays open for ever), and it accepts every
connection. `LimitedHttpToolsProtocol` adds them around httptools' parsing.
It parses nothing itself: it counts bytes and arms timers.

- **Head**: at most `MAX_HEAD_BYTES` (16 KiB) of request target and headers.
  A complete head over it gets 431 (OpenAI's error envelope, code
  `request_header_fields_too_large`); so does a head still incomplete after
  that many bytes (counted per read), and the connection is closed, so a
  worker holds at most the cap plus one read (250 kB with uvloop) of any head.
- **Read deadline** (`HTTP_READ_TIMEOUT_SECONDS`): a request's head and body
  must arrive in full within the deadline of the connection opening (for its
  first request) or of the request's first byte (later requests), else the
  connection is closed. An app awaiting the body then receives
  `http.disconnect` (`read_body` raises `ClientDisconnected`: nothing is
  minted). Between requests uvicorn's keep-alive timeout applies instead.
- **Connections** (`MAX_CONNECTIONS_PER_WORKER`): a connection accepted while
  the worker already holds that many is closed at once, unanswered, before
  anything is read. The cap is hard: what a worker holds is bounded whatever
  the clients send.

Why not what uvicorn offers. `limit_concurrency` counts connections and
tasks but is checked only once a request head is complete: connections
beyond it are accepted and held (until they finish a head, if ever), then
answered 503; and as it counts the asking connection itself, the Nth
connection is already refused. `http="h11"` caps the head
(`h11_max_incomplete_event_size`) but has no read deadlines either, and its
pure-Python parser costs more per request. Measured with wrk (20
connections, `POST /v1/realtime/client_secrets`, the built-in emulator as
upstream, one worker, the service process's CPU ticks from /proc), five
interleaved 8 s rounds on the 2-core machine while other jobs loaded it,
medians of CPU per request: uvicorn's httptools protocol 649 µs, this one
654 µs (`python -m service` itself: 636 µs), h11 816 µs (+26%). Driving the
protocol alone (a complete request fed, its cycle finished, no app), this
one adds ~1 µs per request to httptools' ~7 µs: noise against the mint.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, ClassVar, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.core.errors import InvalidRequest

MAX_HEAD_BYTES = 16 * 1024
"""The largest request head: target plus header names and values (16 KiB; nginx allows 8 KiB
per line). This API's largest legitimate header is a caller's bearer token or JWT."""

REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between two warnings about connections refused at the cap (not one per connection)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one worker allows its connections (picklable: uvicorn sends it to spawned workers)."""

    read_timeout: float
    max_connections: int
    max_head_bytes: int = MAX_HEAD_BYTES


class RequestHeadTooLarge(Exception):
    """Raised inside httptools' callback to stop parsing a head over the cap."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head cap, read deadlines and a connection cap."""

    _refusal_logged_at: ClassVar[float] = float("-inf")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._read_timeout = limits.read_timeout
        self._max_connections = limits.max_connections
        self._max_head_bytes = limits.max_head_bytes
        self._read_deadline: asyncio.TimerHandle | None = None
        self._reading = False  # a request has begun and not yet fully arrived
        self._in_head = False  # ... and its head has not either
        self._head_bytes = 0  # bytes of earlier reads since the head began
        self._read_bytes = 0  # bytes of the read being parsed
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Close at once beyond the cap; else give the first request its deadline."""
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
            self._refuse_connection()
            return
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Disarm the deadline with the connection."""
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse (uvicorn), then count a still-incomplete head and keep a deadline armed."""
        self._read_bytes = len(data)
        super().data_received(data)
        if self._in_head:
            self._head_bytes += self._read_bytes
            if self._head_bytes > self._max_head_bytes and not self.transport.is_closing():
                self._refuse_head()
                return
        if self._read_deadline is None and (self._reading or self._waiting_for_client()):
            self._arm_read_deadline()

    def on_message_begin(self) -> None:
        """A request's first byte: its head starts here."""
        super().on_message_begin()
        self._reading = self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        """Refuse a complete head over the cap; else hand the request to uvicorn."""
        self._in_head = False
        # Only a read that could have carried more than the cap is measured (never on the hot path).
        if (
            self._head_bytes + self._read_bytes > self._max_head_bytes
            and self._head_size() > self._max_head_bytes
        ):
            self._head_too_large = True
            # httptools stops at an exception from a callback and uvicorn's
            # `data_received` answers the parser error with `send_400_response`.
            raise RequestHeadTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request has fully arrived: its deadline is met."""
        self._reading = False
        self._disarm_read_deadline()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, which is a 431 when the error was the cap's."""
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _head_size(self) -> int:
        """The parsed head's size: target, header names and values, `: ` and CRLF each."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _waiting_for_client(self) -> bool:
        """No request is being answered and no keep-alive timer runs: the client owes bytes."""
        answered = self.cycle is None or self.cycle.response_complete
        return answered and self.timeout_keep_alive_task is None

    def _arm_read_deadline(self) -> None:
        self._read_deadline = self.loop.call_later(self._read_timeout, self._read_timed_out)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        """Answer 431 and close, as uvicorn's own `send_400_response` answers 400."""
        self.logger.warning(
            "Request head over %d bytes: answered 431 and closed.", self._max_head_bytes
        )
        self._head_too_large = False
        body = head_too_large_body(self._max_head_bytes)
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    def _refuse_connection(self) -> None:
        """Close a connection over the cap before reading from it; warn now and then."""
        now = time.monotonic()
        if now - LimitedHttpToolsProtocol._refusal_logged_at >= REFUSAL_LOG_INTERVAL:
            LimitedHttpToolsProtocol._refusal_logged_at = now
            self.logger.warning(
                "%d connections open, MAX_CONNECTIONS_PER_WORKER reached: closing new ones.",
                self._max_connections,
            )
        self.transport.close()


@cache
def head_too_large_body(limit: int) -> bytes:
    """The 431's body: OpenAI's error envelope, like every error this service answers."""
    message = f"Request head (target and headers) exceeds the {limit}-byte limit."
    return InvalidRequest(message, code="request_header_fields_too_large").body()


def http_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's `http=`: the limited protocol with `limits` bound.

    A `functools.partial`, not a class: uvicorn only calls it (with `config`,
    `server_state`, `app_state`, `_loop`), and it pickles by reference to the
    class, so spawned workers (`WORKERS` > 1) receive the same limits.
    """
    return cast("type[asyncio.Protocol]", partial(LimitedHttpToolsProtocol, limits=limits))
