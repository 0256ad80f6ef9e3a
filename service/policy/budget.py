"""A profile's dollar budgets: what a profiles file may set beside its policy fields.

`QUOTA_USD_PER_DAY` and `CALLS_MAX_USD` apply to every caller; a profile may
give its callers other values (a free tier spends less than staff)::

    [profiles.free.budget]
    quota_usd_per_day = 2       # dollars per caller per UTC day
    calls_max_usd = 0.5         # dollars per call

A value a profile does not set is the env's (`Settings.budget_for`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from service.core.env_values import Usd


class Budget(BaseModel):
    """Dollar limits of one profile (None: the env's value applies)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quota_usd_per_day: Usd = None
    """Dollars per caller per UTC day, from supervised calls' usage."""
    calls_max_usd: Usd = None
    """Dollars per call: a call that crosses it is hung up."""
