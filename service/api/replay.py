"""A body already read, handed to Starlette again: for parsing a capped multipart body.

The call endpoints (and the emulator's) read a request's body themselves, so
that its size limit and a client that disconnects are handled in one place;
Starlette's form parser (python-multipart) then reads it from this `receive`.
"""

from __future__ import annotations

from starlette.types import Message, Receive


def replay(body: bytes) -> Receive:
    """A `receive` that yields `body` once, then a disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
