"""Server-created calls: admitted, created, recorded and supervised until they end.

The service creates WebRTC calls for browsers (`POST /v1/realtime/calls`,
`POST /v1/live/sessions`) so that no browser ever holds a credential. The
`Supervisor` is this package's one door: a flow hands it a `NewCall` and gets
the created call back; hang-ups, a call's state and usage go through it
too. Inside: `admission` (budgets, live-call slots), `loop` (one call's
sideband, the policy kept), `keeper` (leases, metering, adoption), `records`
(who created which call, what the policy fixed, what the supervisor did),
`state` (the owner's view of a call) and `fixed` (the comparison, pure).
"""

from service.calls.state import CallState
from service.calls.supervisor import NewCall, Supervisor

__all__ = ["CallState", "NewCall", "Supervisor"]
