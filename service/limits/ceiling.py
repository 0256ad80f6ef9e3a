"""The deployment's daily dollar ceiling (`QUOTA_USD_PER_DAY_TOTAL`), as mints and calls see it.

The line that protects the bill when everything else is misconfigured: once
every caller's supervised calls together have cost it today, every new call
and mint is refused (429 `quota_exceeded` until midnight UTC), and each
worker hangs up its live calls (`service.calls`). Its counter is written by
the supervisors, with each caller's, in micro-dollars.
"""

from __future__ import annotations

from service.core.clock import Clock, seconds_to_midnight
from service.core.errors import RateLimited


def deployment_usd_key(day: str) -> str:
    """The whole deployment's dollars that day, in micro-dollars."""
    return f"rtp:d:{day}:usd"


def ceiling_reached(clock: Clock) -> RateLimited:
    """The refusal while the deployment's ceiling is reached: until midnight UTC."""
    return RateLimited(
        "The service's daily spending ceiling is reached; it resets at 00:00 UTC.",
        code="quota_exceeded",
        headers={"Retry-After": str(seconds_to_midnight(clock()))},
    )
