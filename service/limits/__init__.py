"""How often a caller may mint: rates per identity and per IP, and a daily quota.

`Limiter` applies the configured limits through the shared store's `Rates`
(process memory, or Redis when `REDIS_URL` is set).
"""

from service.limits.limiter import Limiter, Verdict

__all__ = ["Limiter", "Verdict"]
