"""How often a caller may mint: rates per identity and per IP, and a daily quota.

`Limiter` applies the configured limits through a `Store`: process memory,
or Redis when `REDIS_URL` is set (exact across workers and replicas).
"""

from service.limits.limiter import Limiter, Verdict, build_store
from service.limits.store import Limit, Store, StoreUnavailable

__all__ = ["Limit", "Limiter", "Store", "StoreUnavailable", "Verdict", "build_store"]
