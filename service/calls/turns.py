"""Responses created by the server (`CALLS_RESPONSES=server`): the tag that tells them apart.

No server event shows a response's own `instructions` or `tools` (a
`response.create` may set both), so under `CALLS_RESPONSES=server` only the
supervisor starts responses: OpenAI's turn detection is pinned to
`create_response=false`, the supervisor sends `response.create` for each
committed user turn (`input_audio_buffer.committed`), and every
`response.created` it cannot prove is its own is cancelled at once.

The proof is in the response's `metadata` (`METADATA_KEY`): a one-time mark
made from the call's secret tag (`new_tag`, kept in the call's record so that
a worker adopting the call can check the marks of the one before it). A
server event reaches the browser too, so a mark is seen once used: each mark
is good once (`Marks.seen`) and for `MARK_TTL_MS` from when it was made, and
a browser cannot make one without the tag, which never leaves the service
(never logged, never in a call's state).

Pure functions and one small set; the tag and marks are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

METADATA_KEY = "rtp_turn"
"""The `metadata` key of a response the supervisor started."""
MARK_TTL_MS = 60_000
"""A mark is good for this long after it was made (a `response.created` comes in ms)."""
SEEN_KEPT = 256
"""Marks remembered as used, per call: more than live for `MARK_TTL_MS`."""


def new_tag() -> str:
    """A call's secret tag: 32 random bytes, hex."""
    return secrets.token_hex(32)


def _mac(tag: str, call_id: str, made_ms: int, nonce: str) -> str:
    message = f"{call_id}.{made_ms}.{nonce}".encode()
    return hmac.new(tag.encode(), message, hashlib.sha256).hexdigest()[:32]


def mark(tag: str, call_id: str, now_ms: int) -> str:
    """A one-time mark for the next `response.create`: when made, a nonce and their MAC."""
    nonce = secrets.token_hex(8)
    return f"{now_ms}.{nonce}.{_mac(tag, call_id, now_ms, nonce)}"


def response_create(tag: str, call_id: str, now_ms: int) -> dict[str, Any]:
    """The `response.create` the supervisor sends for a committed turn: the session's own
    instructions and tools (nothing overridden), marked in `metadata`."""
    return {
        "type": "response.create",
        "response": {"metadata": {METADATA_KEY: mark(tag, call_id, now_ms)}},
    }


def mark_of(response: Mapping[str, Any]) -> str | None:
    """The mark a response carries in its `metadata`, if any."""
    metadata = response.get("metadata")
    value = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) else None


def valid(tag: str, call_id: str, value: str | None, now_ms: int) -> bool:
    """Whether `value` is a mark made with `tag` for this call, within `MARK_TTL_MS`."""
    if value is None:
        return False
    made, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not made.isdigit() or not nonce or not mac:
        return False
    made_ms = int(made)
    if not -MARK_TTL_MS <= now_ms - made_ms <= MARK_TTL_MS:
        return False
    return hmac.compare_digest(mac, _mac(tag, call_id, made_ms, nonce))


class Marks:
    """The marks one call's responses used (this worker's memory): each is good once."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}

    def take(self, tag: str, call_id: str, response: Mapping[str, Any], now_ms: int) -> bool:
        """Whether `response` is one the supervisor started: a valid mark, not used before."""
        value = mark_of(response)
        if value is None or value in self._seen or not valid(tag, call_id, value, now_ms):
            return False
        self._seen[value] = None
        while len(self._seen) > SEEN_KEPT:
            del self._seen[next(iter(self._seen))]
        return True
