"""Server-created calls: the browser's offer, and who may end the call it became.

The service creates WebRTC calls for browsers (`POST /v1/realtime/calls`,
`POST /v1/live/sessions`) so that no browser ever holds a credential. This
package holds what those calls need beyond a mint: checking the SDP offer
before it costs an upstream request, remembering which caller created which
call (so that only they can hang it up), and supervising each call over its
sideband until it ends (`Supervisor`).
"""

from service.calls.fixed import fixed_fields
from service.calls.offer import check_offer
from service.calls.records import CallRecord, CallRecords
from service.calls.supervisor import Supervisor

__all__ = ["CallRecord", "CallRecords", "Supervisor", "check_offer", "fixed_fields"]
