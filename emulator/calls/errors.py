"""What the emulator's calls refuse, as `EmulatorError`s (one envelope for every route).

`validate_offer` is the one check an SDP offer passes before any WebRTC code
reads it: text, starting with `v=0` (RFC 8866's first line), and bounded, like
the 64 KiB `CALLS_MAX_SDP_BYTES` default of issue #12. What it refuses is a
400 `invalid_sdp`, and the message never quotes the offer.
"""

from __future__ import annotations

from emulator.errors import EmulatorError, InvalidRequest, NotFound, RateLimited

MAX_OFFER_BYTES = 64 * 1024


class InvalidOffer(InvalidRequest):
    """400 `invalid_sdp`: the offer is not SDP, too large, or aiortc could not use it."""

    default_code = "invalid_sdp"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="sdp")


class UnknownCall(NotFound):
    """404: no open call has this id (never created, or already ended)."""

    default_code = "call_not_found"


class CallLimitReached(RateLimited):
    """429: the emulator already holds as many open calls as it allows."""

    default_code = "too_many_calls"


def validate_offer(offer: object, max_bytes: int = MAX_OFFER_BYTES) -> str:
    """Return the offer if it is plausible SDP text; raise `InvalidOffer` otherwise."""
    if isinstance(offer, bytes | bytearray):
        if len(offer) > max_bytes:
            raise InvalidOffer(f"The SDP offer is larger than {max_bytes} bytes.")
        try:
            offer = bytes(offer).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidOffer("The SDP offer is not UTF-8 text.") from None
    if not isinstance(offer, str):
        raise InvalidOffer("The SDP offer must be text.")
    if len(offer.encode("utf-8")) > max_bytes:
        raise InvalidOffer(f"The SDP offer is larger than {max_bytes} bytes.")
    if not offer.startswith("v=0"):
        raise InvalidOffer("The SDP offer must start with 'v=0'.")
    if "\x00" in offer:
        raise InvalidOffer("The SDP offer contains a NUL character.")
    return offer


class WebrtcUnavailable(EmulatorError):
    """501: a WebRTC call was asked for, but aiortc (the `webrtc` extra) is not installed."""

    status_code = 501
    error_type = "server_error"
    default_code = "webrtc_unavailable"

    @classmethod
    def missing(cls, error: ImportError) -> WebrtcUnavailable:
        """The 501 for this failed import, naming the missing module and the extra."""
        name = error.name or ""
        module = name if name and not name.startswith("emulator.") else "aiortc"
        return cls(
            f"The emulator's calls need the `webrtc` extra ({module} is not installed): "
            "`uv sync --extra webrtc`, or the dev group; or run the emulator with --fake-media."
        )
