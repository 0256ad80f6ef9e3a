"""How often a caller may mint: rates per identity and per IP, and a daily quota.

`Limiter` applies the configured limits through the shared store's `Rates`
(process memory, or Redis when `REDIS_URL` is set), and refuses callers an
operator suspended (`Suspensions`).
"""

from service.limits.ceiling import ceiling_reached, deployment_usd_key
from service.limits.limiter import Limiter, Verdict
from service.limits.suspensions import Suspension, Suspensions

__all__ = [
    "Limiter",
    "Suspension",
    "Suspensions",
    "Verdict",
    "ceiling_reached",
    "deployment_usd_key",
]
