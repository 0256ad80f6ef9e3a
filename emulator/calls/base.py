"""What every emulated call does, whatever carries its media.

`BaseCall` holds the session, the server events (history, subscribers: the
sideband's view), client events (browser: untrusted, sideband: trusted) and
their timeline, a Realtime call's conversation (`conversation.py`), the
override record that the benchmarks read, Live's usage ticker and the one-time
ending. Its subclasses carry the media: `EmulatedCall` (aiortc, `call.py`) and
`FakeMediaCall` (no media, `fake_media.py`), which is why nothing here imports
aiortc.

Every `*_ms` figure is milliseconds since the call was created, on the
monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.calls import events, realtime, responses
from emulator.calls.conversation import Conversation
from emulator.calls.events import CallKind, Event

HISTORY = 256
SUBSCRIBER_QUEUE = 1024
OVERRIDES_KEPT = 256
CLIENT_EVENTS_KEPT = 256


@dataclass(slots=True)
class Override:
    """A browser's `session.update`, and when the next sideband `session.update` followed it."""

    at: float
    reverted_at: float | None = None


@dataclass(frozen=True, slots=True)
class ClientEventRecord:
    """A client event on the call's timeline: its type (None if it had none), where it came
    from (`data_channel` or `sideband`), the types of the server events it got, and the
    `response_id` / `item_id` it named (ids only, never content; None when it named none)."""

    at: float
    type: str | None
    source: str
    answered: list[str]
    response_id: str | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallReport:
    """What `GET /_emulator/calls/{id}` shows of a call, open or ended."""

    overrides: list[dict[str, int | None]]
    sideband_updates: int
    session: dict[str, Any]
    listeners: int = 0
    """Sidebands (and other subscribers) attached now."""
    client_events: list[dict[str, Any]] = field(default_factory=list)
    """The timeline of client events received: `at_ms`, `type`, `source`, `answered`, and
    `response_id` / `item_id` when the event named one."""
    hold_responses: bool = False
    """Whether browser and sideband `response.create`s stay in progress (`POST .../hold`)."""


class BaseCall:
    """A call answered by the emulator (Realtime or Live), without its media."""

    def __init__(
        self,
        call_id: str,
        kind: CallKind,
        session: Mapping[str, Any],
        on_closed: Callable[[BaseCall, str], Awaitable[None]],
        usage_interval: float | None = None,
        transcript_interval: float | None = None,
    ) -> None:
        self.call_id = call_id
        self.kind: CallKind = kind
        self.session = events.resolved_session(kind, call_id, session)
        self.created_at = time.monotonic()
        self.connected_at: float | None = None
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.closed_reason: str | None = None
        self.overrides: deque[Override] = deque(maxlen=OVERRIDES_KEPT)
        self.sideband_updates = 0
        self.client_events: deque[ClientEventRecord] = deque(maxlen=CLIENT_EVENTS_KEPT)
        self.conversation = Conversation() if kind == "realtime" else None
        self.hold_responses = False
        self.speak_s = 0.0
        """How long a response a browser's own data channel asked for (`spoken`) takes to
        speak before it completes: OpenAI streams it, and a cancel meanwhile ends it."""
        """Keep every `response.create` (browser or sideband) in progress until a
        `response.cancel` (or the response control) ends it: a cancel is then observable."""
        self._usage_interval = usage_interval
        self._transcript_interval = transcript_interval
        self._on_closed = on_closed
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = asyncio.Event()
        self._opened = False

    @property
    def connection_state(self) -> str:
        """`RTCPeerConnection.connectionState`: new, connecting, connected, failed or closed."""
        raise NotImplementedError

    def start(self) -> None:
        """The call is answered: the session opens, and a Live session reports its usage.

        The opening event (`session.created` / `session.started`) is emitted here,
        before any client event can be answered, so every `session.updated` follows
        it, on the sideband as on the browser's channel (which gets it first once open).
        """
        self._opened = True
        self.emit(events.session_opened(self.kind, self.session))
        if self.kind == "live" and self._usage_interval:
            self._spawn(self._report_usage(self._usage_interval))
        if self.kind == "live" and self._transcript_interval:
            self._spawn(self._transcribe(self._transcript_interval))

    def ms_since_created(self, moment: float) -> int:
        """A monotonic moment as milliseconds since the call was created."""
        return round((moment - self.created_at) * 1000)

    def report(self) -> CallReport:
        """The call's override record, sideband update count and current session."""
        overrides: list[dict[str, int | None]] = [
            {
                "at_ms": self.ms_since_created(override.at),
                "reverted_after_ms": None
                if override.reverted_at is None
                else round((override.reverted_at - override.at) * 1000),
            }
            for override in self.overrides
        ]
        timeline = [
            {
                "at_ms": self.ms_since_created(record.at),
                "type": record.type,
                "source": record.source,
                "answered": record.answered,
                **({"response_id": record.response_id} if record.response_id else {}),
                **({"item_id": record.item_id} if record.item_id else {}),
            }
            for record in self.client_events
        ]
        return CallReport(
            overrides,
            self.sideband_updates,
            self.session,
            len(self._subscribers),
            timeline,
            self.hold_responses,
        )

    # Server events out.

    def emit(self, event: Event) -> Event:
        """Send a server event to the browser and to every subscriber."""
        event.setdefault("event_id", events.new_id("event"))
        self.history.append(event)
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):  # a stalled subscriber misses events
                queue.put_nowait(event)
        self._to_browser(event)
        return event

    def _to_browser(self, event: Event) -> None:
        """Deliver a server event on the browser's data channel (none without media)."""

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue of every server event emitted from now on (the sideband's view).

        Once the session is open the queue starts with the opening event, showing
        the current session: a sideband attached after the answer, the usual
        order, sees `session.created` before anything else, as it would attach
        to OpenAI's call.
        """
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        if self._opened:
            queue.put_nowait(events.session_opened(self.kind, self.session))
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        """Stop delivering events to `queue`."""
        self._subscribers.discard(queue)

    @property
    def closed(self) -> bool:
        """Whether the call has ended (its last events are already emitted)."""
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        """Return once the call has ended."""
        await self._closed.wait()

    def usage(self) -> dict[str, float | int]:
        """A Live session's cumulative usage (`SessionUsage`), in whole seconds."""
        seconds = math.floor(time.monotonic() - self.created_at)
        return {"seconds": seconds, "active_seconds": seconds, "paused_seconds": 0}

    # Client events in.

    def client_event(
        self, event: object, *, trusted: bool, hold: bool = False, spoken: bool = False
    ) -> list[Event]:
        """Apply a client event (browser: untrusted, sideband: trusted); return what it emitted.

        A `response.create` stays in progress if `hold` (or the call's `hold_responses`);
        if `spoken` (the browser's real data channel) it starts now and completes after
        `speak_s` unless cancelled first. Each is on the call's timeline: its type, where
        it came from, what it got and the response or item id it named.
        """
        named = event if isinstance(event, Mapping) else {}
        event_type = named.get("type")
        hold = hold or self.hold_responses
        speaking = spoken and not hold and event_type == "response.create"
        answers = self._answer(event, trusted=trusted, hold=hold or speaking)
        emitted = [self.emit(answer) for answer in answers]
        if speaking:
            self._speak_started(emitted)
        self.client_events.append(
            ClientEventRecord(
                time.monotonic(),
                events.shown(event_type) if isinstance(event_type, str) else None,
                "sideband" if trusted else "data_channel",
                [answer["type"] for answer in emitted],
                _named_id(named, "response_id"),
                _named_id(named, "item_id"),
            )
        )
        return emitted

    def _speak_started(self, emitted: list[Event]) -> None:
        """The response just created (if one was) completes once spoken."""
        response = self.conversation.response if self.conversation is not None else None
        created = [event for event in emitted if event["type"] == "response.created"]
        if response is not None and created and created[0]["response"]["id"] == response.id:
            self._spawn(self._speak(response))

    async def _speak(self, response: responses.Response) -> None:
        """After `speak_s` (a yield to the event loop at least), the response completes,
        unless it was cancelled (or finished by the control) meanwhile."""
        await asyncio.sleep(self.speak_s)
        if self.conversation is not None and self.conversation.response is response:
            for event in self.conversation.finish():
                self.emit(event)

    def _answer(self, event: object, *, trusted: bool, hold: bool = False) -> list[Event]:
        """What a client event gets, applied to the session or the conversation."""
        refused = events.refusal(self.kind, self.session, event, trusted=trusted)
        if refused is not None:
            return [refused]
        assert isinstance(event, Mapping)  # noqa: S101 (refusal() checked it; narrows for mypy)
        event_type = event["type"]
        reply: dict[str, Any] = {}
        if isinstance(event.get("event_id"), str) and self.kind == "live":
            reply["client_event_id"] = event["event_id"]
        if event_type == "session.update" and self.conversation is not None:
            refused = realtime.session_update_refusal(
                self.session, event, audio_produced=self.conversation.audio_produced
            )
            if refused is not None:
                return [refused]
        if event_type == "session.update":
            self._record_update(trusted=trusted)
            update = event.get("session")
            if isinstance(update, Mapping):
                self.session = events.merged(self.session, update)
            return [events.server_event("session.updated", session=self.session, **reply)]
        if self.conversation is not None:
            return self.conversation.answer(self.session, event, hold=hold)
        if event_type == "session.close":
            self.close_soon("close_requested")
            return []
        elapsed_ms = self.ms_since_created(time.monotonic())
        ack = events.acknowledgement(self.kind, event, elapsed_ms)
        return [ack] if ack is not None else []

    def play_response(
        self,
        *,
        function: str | None = None,
        hold: bool = False,
        input_tokens: int = responses.DEFAULT_INPUT_TOKENS,
        output_tokens: int = responses.DEFAULT_OUTPUT_TOKENS,
    ) -> list[Event]:
        """A Realtime response as if the model had answered (the emulator's control).

        A response in progress (held) is finished with this usage; otherwise a new
        one plays, calling `function` if given, and stays in progress if `hold`.
        """
        assert self.conversation is not None  # noqa: S101 (only Realtime calls respond)
        if self.conversation.response is not None and not hold:
            played = self.conversation.finish(
                input_tokens=input_tokens, output_tokens=output_tokens
            )
        else:
            played = self.conversation.create_response(
                self.session, {}, function=function, hold=True
            )
            if not hold and self.conversation.response is not None:
                played += self.conversation.finish(
                    input_tokens=input_tokens, output_tokens=output_tokens
                )
        return [self.emit(event) for event in played]

    def heard(self, audio_ms: int) -> list[Event]:
        """Audio arrived from the browser and turn detection ended the user's turn; what it
        emitted.

        A Realtime call commits the turn as a user item (`input_audio_buffer.committed`,
        the item, its transcript) and, as OpenAI's server_vad and semantic_vad do unless
        the session's `turn_detection.create_response` is false, starts its response
        (`response.created` … `response.done`, at once: the call's `hold_responses` holds
        `response.create`s, not this), unless one is already in progress. With turn
        detection null nothing is detected: the audio waits in the buffer for the client's
        `input_audio_buffer.commit` (and `response.create`).
        """
        if self.conversation is None:
            return [self.emit(events.transcript(self.kind, audio_ms))]
        if realtime.turn_detection(self.session) is None:
            self.conversation.audio_buffered = True
            return []
        item_id, announced = self.conversation.hear_user()
        emitted = [self.emit(event) for event in announced]
        emitted.append(self.emit(events.transcript(self.kind, audio_ms, item_id=item_id)))
        emitted += [
            self.emit(event) for event in self.conversation.transcribed(item_id, events.TRANSCRIPT)
        ]
        if realtime.responds_to_turns(self.session) and self.conversation.response is None:
            played = self.conversation.create_response(self.session, {})
            emitted += [self.emit(event) for event in played]
        return emitted

    def _record_update(self, *, trusted: bool) -> None:
        """A browser's update opens an override; the sideband's next update reverts them all."""
        now = time.monotonic()
        if not trusted:
            self.overrides.append(Override(now))
            return
        self.sideband_updates += 1
        for override in self.overrides:
            if override.reverted_at is None:
                override.reverted_at = now

    async def _report_usage(self, interval: float) -> None:
        """Live's periodic `session.usage.updated`, as OpenAI sends it during a session."""
        while True:
            await asyncio.sleep(interval)
            self.emit(events.server_event("session.usage.updated", usage=self.usage()))

    async def _transcribe(self, interval: float) -> None:
        """Live's `session.input_transcript.delta`, every `interval` s: events a supervisor
        receives and reads but meters nothing of (the benchmarks' control for usage
        reports: as many frames, of about their size)."""
        while True:
            await asyncio.sleep(interval)
            self.emit(events.transcript("live", self.ms_since_created(time.monotonic())))

    # Ending.

    def close_soon(self, reason: str) -> None:
        """Close from a callback that cannot await."""
        if not self._closing:
            self._spawn(self.close(reason))

    async def close(self, reason: str) -> None:
        """End the call once: a Live session says `session.closed`, then the media stops."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.closed_reason = reason
        if self.kind == "live":
            self.emit(
                events.server_event(
                    "session.closed",
                    reason="close_requested"
                    if reason in ("hangup", "close_requested")
                    else "connection_lost",
                    session=self.session,
                    usage=self.usage(),
                )
            )
        try:
            # Forgotten first: from here on no route reaches the call, and the
            # ending is on record by the time the browser sees the channel close.
            await self._on_closed(self, reason)
        finally:
            await self._release_media()
            current = asyncio.current_task()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
            self._subscribers.clear()
            self._closed.set()

    async def _release_media(self) -> None:
        """Stop the media (nothing to stop without it)."""

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _named_id(event: Mapping[str, Any], name: str) -> str | None:
    """The id a client event names under `name` (cut short as `events.shown` does), or None."""
    value = event.get(name)
    return events.shown(value) if isinstance(value, str) and value else None
