"""The browser's SDP offer, checked before anything is sent upstream.

The service does not parse SDP (the upstream's WebRTC stack does, and a
hand-written parser here would be protocol code the project must not carry).
It only refuses what cannot be an offer, so that a creation that would fail
never costs an upstream request (GPT-Live bills 15 seconds per created
session): not text, not starting with `v=0` (RFC 8866 §5: the first line),
or larger than `CALLS_MAX_SDP_BYTES`. The offer's content is never logged;
its size is.
"""

from __future__ import annotations

from service.core.errors import InvalidRequest


def check_offer(offer: bytes | str, limit: int, param: str = "sdp") -> str:
    """The offer as text, or a 400 `invalid_sdp` naming `param`."""
    raw = offer.encode("utf-8", "surrogatepass") if isinstance(offer, str) else offer
    if len(raw) > limit:
        raise _invalid(f"The SDP offer exceeds the {limit}-byte limit.", param)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("The SDP offer is not UTF-8 text.", param) from None
    if not text.startswith("v=0"):
        raise _invalid("The SDP offer must start with 'v=0'.", param)
    if "\x00" in text:
        raise _invalid("The SDP offer contains a NUL byte.", param)
    return text


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_sdp")
