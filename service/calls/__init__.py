"""Server-created calls: the browser's offer, and who may end the call it became.

The service creates WebRTC calls for browsers (`POST /v1/realtime/calls`,
`POST /v1/live/sessions`) so that no browser ever holds a credential. This
package holds what those calls need beyond a mint: checking the SDP offer
before it costs an upstream request, and remembering which caller created
which call, so that only they can hang it up.
"""

from service.calls.offer import check_offer
from service.calls.records import CallKind, CallRecords

__all__ = ["CallKind", "CallRecords", "check_offer"]
