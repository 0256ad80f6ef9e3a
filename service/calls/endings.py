"""How a supervised call ends: the one list of endings that metrics, hang-ups and logs name."""

from __future__ import annotations

from typing import Literal

How = Literal[
    "ended",
    "unknown_call",
    "max_duration",
    "override",
    "quota",
    "budget",
    "ceiling",
    "unsupervisable",
    "flood",
    "over_cap",
    "operator",
]
"""How a supervised call ended, as `rtp_calls_ended_total{how}` counts it. `ended`: it
ended upstream (a hang-up, the browser leaving, Live's `session.closed`), the same
for both kinds of call; `unknown_call`: the upstream refused the sideband as unknown
without a normal close first; `unsupervisable`: hung up, its sideband would not stay
attached (`service.calls.reattach`); `flood`: hung up, its sideband sent past its event
budget (`service.upstream.sideband`); `over_cap`: over
`CALLS_MAX_CONCURRENT_PER_IDENTITY` once the store returned
(`CALLS_OVER_CAP_AFTER_OUTAGE`); `operator`: an operator ended the caller's calls
(`/admin`); `budget`: the call's cost reached `CALLS_MAX_USD`; `ceiling`: the
deployment's reached `QUOTA_USD_PER_DAY_TOTAL`."""
