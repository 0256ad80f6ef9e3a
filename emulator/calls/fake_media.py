"""Calls without media, for benchmarks that hold thousands of them (`--fake-media`).

A `FakeMediaCall` answers any plausible offer (`v=0` …) with a canned SDP
answer and no aiortc at all: it is connected at once, never times out nor
loses its connection, and lives until it is hung up. Its session, server
events, client events, sidebands, controls and hang-up are `BaseCall`'s, the
same as a real call's; only the browser's half is missing.

Like every call, it emits its opening event (`session.created` /
`session.started`) when answered, and repeats it first to every sideband that
subscribes later (`BaseCall.start`, `BaseCall.subscribe`).
"""

from __future__ import annotations

import secrets
import time

from emulator.calls.base import BaseCall


def canned_answer() -> str:
    """An SDP answer shaped like aiortc's (audio and the data channel); it leads nowhere."""
    session = secrets.randbelow(2**62)
    fingerprint = ":".join(f"{byte:02X}" for byte in secrets.token_bytes(32))
    lines = [
        "v=0",
        f"o=- {session} 0 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic:WMS *",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        "a=sendrecv",
        "a=mid:0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        f"a=ice-ufrag:{secrets.token_hex(4)}",
        f"a=ice-pwd:{secrets.token_hex(11)}",
        f"a=fingerprint:sha-256 {fingerprint}",
        "a=setup:active",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 127.0.0.1",
        "a=mid:1",
        "a=sctp-port:5000",
        "a=max-message-size:65536",
        "a=setup:active",
        "",
    ]
    return "\r\n".join(lines)


class FakeMediaCall(BaseCall):
    """A call with no media: connected from the answer until its hang-up."""

    def answer(self) -> str:
        """Connect at once and return a canned SDP answer."""
        self.connected_at = time.monotonic()
        return canned_answer()

    @property
    def connection_state(self) -> str:
        """`connected` until the call ends, then `closed`."""
        return "closed" if self._closing else "connected"
