"""What a supervised call costs, from the usage OpenAI reports on its sideband, and the dollar
budgets it is held to.

Costs come from the price table (`service.billing`, `Settings.prices`) at
the call's model:

- a Realtime `response.done`'s `usage`, at the call's model;
- `conversation.item.input_audio_transcription.completed`'s `usage`, at the
  transcription model the session has (as created, then as each
  `session.updated` shows it);
- GPT-Live's cumulative usage (`session.usage.updated`, `session.closed`):
  the session's whole cost so far, never added twice; its creation charges
  the start seconds at once.

A call's cost is kept exactly (pico-dollars) by the worker that supervises
it; the store counts whole micro-dollars per caller and UTC day, per profile
and day, for the deployment, and per call (`call_usd_key`): the worker that
adopts a call reads the last, so what was counted is counted once.

Budgets, in micro-dollars: `CALLS_MAX_USD` per call (from the caller's
profile), `QUOTA_USD_PER_DAY` per caller (likewise), `QUOTA_USD_PER_DAY_TOTAL`
for the deployment (`service.limits.ceiling`). A model without a price never
reaches a call while a dollar budget applies (`service.sessions.plan`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from fractions import Fraction
from typing import Any, Literal

import structlog
from prometheus_client import Counter

from service.billing import Cost, live_cost, response_cost, transcription_cost
from service.billing.cost import PICO_PER_DOLLAR, PICO_PER_MICRO
from service.calls.fixed import value_at
from service.calls.records import CallRecord
from service.calls.usage import UsageKeys, call_usd_key, profile_usd_key
from service.config import Settings
from service.contract.calls import CallKind
from service.core import metrics
from service.core.env_values import micro_dollars
from service.limits import deployment_usd_key

log = structlog.get_logger("service.calls")

TRANSCRIPTION_MODEL = "audio.input.transcription.model"
TRANSCRIBED = "conversation.item.input_audio_transcription.completed"
MODELS_KEPT = 256
"""Models whose metric child is kept (the allowed models, and what records of other
workers' configurations name): a bound, whatever a record holds."""
CostKind = Literal["realtime", "live", "transcription"]
"""What a cost is for, as `rtp_cost_usd_total{model,kind}` labels it."""


@dataclass(frozen=True, slots=True)
class DollarLimits:
    """The dollar budgets one call is held to, in micro-dollars (None: no such budget)."""

    call: int | None
    caller_day: int | None
    deployment_day: int | None

    @property
    def any(self) -> bool:
        return (
            self.call is not None or self.caller_day is not None or self.deployment_day is not None
        )


NO_DOLLAR_LIMITS = DollarLimits(None, None, None)


def usd(micro: int) -> str:
    """Micro-dollars as logs and answers show dollars: exact, six decimals (`"0.012345"`)."""
    sign = "-" if micro < 0 else ""
    whole, part = divmod(abs(micro), 1_000_000)
    return f"{sign}{whole}.{part:06d}"


class Ceiling:
    """The deployment's ceiling as this worker saw it: one log line and one count of
    `rtp_deployment_ceiling_reached_total` per UTC day it is reached."""

    def __init__(self) -> None:
        self._day: str | None = None

    def reached(self, day: str, spent: int, limit: int | None) -> None:
        if self._day == day:
            return
        self._day = day
        metrics.DEPLOYMENT_CEILING.inc()
        log.error(
            "deployment_budget_exceeded",
            day=day,
            spent_usd=usd(spent),
            limit_usd=usd(limit or 0),
            action="refusing every new call and mint until 00:00 UTC; hanging up live calls",
        )


def _micro(amount: Any) -> int | None:
    return micro_dollars(amount) if amount is not None else None


class Spend:
    """Prices usage and names the counters it goes to; one per supervisor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._prices = settings.prices
        self._limits: dict[str, DollarLimits] = {}
        self._metrics: dict[tuple[str, CostKind], Counter] = {}
        self.ceiling_micro = _micro(settings.quota_usd_per_day_total)
        """`QUOTA_USD_PER_DAY_TOTAL` in micro-dollars (None: no ceiling)."""

    def limits(self, record: CallRecord) -> DollarLimits:
        """The call's dollar budgets (`limits_for` its profile)."""
        return self.limits_for(record.profile)

    def limits_for(self, profile: str) -> DollarLimits:
        """A profile's dollar budgets (a profile this worker does not know, from a worker
        configured otherwise, gets the env's), and the deployment's ceiling."""
        found = self._limits.get(profile)
        if found is None:
            budget = self._settings.budget_for(profile)
            found = DollarLimits(
                _micro(budget.calls_max_usd),
                _micro(budget.quota_usd_per_day),
                self.ceiling_micro,
            )
            self._limits[profile] = found
        return found

    def reserve_micro(self, kind: CallKind, model: object) -> int:
        """What a new call reserves against its dollar budgets (`service.calls.reserves`), in
        whole micro-dollars rounded up: `CALLS_RESERVE_USD`, else one response's worth at
        the model's price (`CALLS_RESERVE_TOKENS` at its highest token price; GPT-Live:
        `CALLS_RESERVE_SECONDS` at its active price); 0 for a model without that price."""
        settings = self._settings
        if settings.calls_reserve_usd is not None:
            return micro_dollars(settings.calls_reserve_usd)
        price = self._prices.price(model) if isinstance(model, str) else None
        pico = Fraction(0)
        if price is not None and kind == "realtime" and price.tokens is not None:
            rates = price.tokens.pico_per_token
            pico = Fraction(settings.calls_reserve_tokens * max(astuple(rates)))
        elif price is not None and kind == "live" and price.live is not None:
            per_second = Fraction(price.live.active_per_minute) / 60
            pico = settings.calls_reserve_seconds * per_second * PICO_PER_DOLLAR
        return math.ceil(pico / PICO_PER_MICRO)

    def response(self, record: CallRecord, event: Mapping[str, Any]) -> Cost | None:
        """A Realtime `response.done`'s cost at the call's model (None: unpriced)."""
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, Mapping) else None
        model = record.created.get("model")
        price = self._prices.price(model) if isinstance(model, str) else None
        cost = response_cost(usage, price) if price is not None and usage is not None else None
        return self._counted(cost, model, "realtime")

    def transcription(self, model: object, event: Mapping[str, Any]) -> Cost | None:
        """A completed input transcription's cost at the session's transcription model."""
        price = self._prices.price(model) if isinstance(model, str) else None
        usage = event.get("usage")
        cost = transcription_cost(usage, price) if price is not None and usage is not None else None
        return self._counted(cost, model, "transcription")

    def live(self, record: CallRecord, usage: object) -> Cost | None:
        """A GPT-Live session's whole cost so far from its latest cumulative `usage` (None
        before any: what its creation charged). Not counted in the metric: the caller adds
        only what is new (`counted_live`)."""
        model = record.created.get("model")
        price = self._prices.price(model) if isinstance(model, str) else None
        return live_cost(usage, price, webrtc=True) if price is not None else None

    def counted_live(self, record: CallRecord, micro: int) -> None:
        """`micro` new micro-dollars of a GPT-Live session, in the metric."""
        model = record.created.get("model")
        if micro > 0 and isinstance(model, str):
            self._cost_metric(model, "live").inc(micro / 1_000_000)

    def _counted(self, cost: Cost | None, model: object, kind: CostKind) -> Cost | None:
        """`cost` in the metric."""
        if cost is not None and cost.pico_dollars > 0 and isinstance(model, str):
            self._cost_metric(model, kind).inc(cost.pico_dollars / 10**12)
        return cost

    def _cost_metric(self, model: str, kind: CostKind) -> Counter:
        """`rtp_cost_usd_total` of a model's price entry, labelled by the entry's name: a
        bounded set, whatever snapshot names an upstream echoes. Kept per model: looking
        a labelled child up costs more than the rest of a usage event's pricing."""
        child = self._metrics.get((model, kind))
        if child is None:
            name = self._prices.entry_name(model) or "unknown"
            child = metrics.COST_USD.labels(name, kind)
            if len(self._metrics) < MODELS_KEPT:
                self._metrics[(model, kind)] = child
        return child

    @staticmethod
    def transcription_model(session: Mapping[str, Any]) -> object:
        """The transcription model a session (as created, or a `session.updated`) has."""
        return value_at(session, TRANSCRIPTION_MODEL)

    @staticmethod
    def keys(record: CallRecord, day: str) -> tuple[str, str, str, str]:
        """The counters a call's dollars go to: its caller's day, its profile's day, the
        deployment's day, and the call's own."""
        return (
            UsageKeys(record.owner, day).usd,
            profile_usd_key(day, record.profile),
            deployment_usd_key(day),
            call_usd_key(record.member),
        )
