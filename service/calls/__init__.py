"""Server-created calls: admitted, created, recorded and supervised until they end.

The service creates WebRTC calls for browsers (`POST /v1/realtime/calls`,
`POST /v1/live/sessions`) so that no browser ever holds a credential. The
`Supervisor` is this package's one door: a flow hands it a `NewCall` and gets
the created call back; hang-ups, a call's state and usage go through it
too. Inside: `admission` (budgets, live-call slots), `loop` (one call's
sideband), `overrides` (what the supervisor does about a breach of the
policy), `keeper` (leases, metering, adoption), `records` (who created which
call, what the policy fixed, what the supervisor did; `sealed`: their MCP
tools without credentials), `state` (the owner's
view of a call), `watched` (a call this worker supervises), `turns` (the marks of the responses
the supervisor starts under `CALLS_RESPONSES=server`), and the pure checks:
`fixed` (what the policy fixed) and `breaches` (every other rule).
"""

from service.calls.intake import NewCall
from service.calls.state import CallState
from service.calls.supervisor import Supervisor

__all__ = ["CallState", "NewCall", "Supervisor"]
