"""The plan: what the policy decided for one request, and the exact body that goes upstream.

`plan` is pure: from the caller's policy and the requested session it makes
the `Plan`, naming fields in errors and decisions as the request's door
spells them (the policy itself speaks GA paths only). `decide` is the flows'
step around it: it picks the caller's policy once, counts violations in the
metrics and notes the decision in the request's audit line.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from service.auth import caller_tag
from service.config import Settings
from service.contract import TranslationSession
from service.contract.effective import SessionJSON
from service.core import metrics
from service.core.errors import PolicyViolation
from service.policy import AnySession, Decision, Outcome, Policy, evaluate
from service.sessions.context import Incoming, Services
from service.sessions.redaction import (
    REDACTED,
    delegation_brief,
    redact,
    server_set,
    tool_name,
    triggers_brief,
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Answers carry secrets or session details: no cache may keep them."""

Spelling = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Door:
    """How one endpoint names the session's fields to its callers.

    `param` spells a GA path in errors (`voice` on the beta endpoint,
    `session.audio.output.voice` on the GA ones); `label` in the decisions
    the answer lists.
    """

    param: Spelling
    label: Spelling = str


@dataclass(frozen=True, slots=True)
class Plan:
    """What the policy decided (`outcome`, in GA paths) and the exact upstream body."""

    door: Door
    policy: Policy
    outcome: Outcome
    body: dict[str, Any]
    translation: bool = False
    """Minted on OpenAI's translation endpoint rather than `client_secrets`."""

    @property
    def session(self) -> SessionJSON:
        """The effective session, exactly as it goes upstream."""
        session: SessionJSON = self.body["session"]
        return session

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """The decisions, named as the door's callers spell the fields."""
        label = self.door.label
        return tuple(
            Decision(label(d.param), d.action, d.reason, d.applied) for d in self.outcome.decisions
        )

    def headers(self) -> dict[str, str]:
        """Every answer's headers: never cached, and the decisions in brief
        (`X-Policy-Decisions: param=action, ...`)."""
        brief = ", ".join(f"{d.param}={d.action}" for d in self.decisions)
        return {**NO_STORE, "X-Policy-Decisions": brief} if brief else dict(NO_STORE)

    def shown(self) -> dict[str, Any]:
        """The upstream session as a caller may see it (what the server set, redacted)."""
        return self.redacted(self.session)

    def redacted(self, session: Mapping[str, Any]) -> dict[str, Any]:
        """`session` as a caller may see it: what the server set, redacted."""
        return redact(dict(session), server_set(self.outcome.decisions))

    def shown_decisions(self) -> list[dict[str, Any]]:
        """The decisions as JSON, operator-only values redacted (`GET /v1/policy` hides the
        server's instructions and tool definitions; so do these)."""
        shown = [decision.as_dict() for decision in self.decisions]
        for decision in shown:
            if decision["param"] == "instructions" and decision["applied"] is not None:
                decision["applied"] = REDACTED
            elif decision["param"] == "tools" and decision["applied"]:
                decision["applied"] = [tool_name(tool) for tool in decision["applied"]]
            elif decision["param"] == "delegation":
                decision["applied"] = delegation_brief(decision["applied"])
            elif decision["param"] == "triggers":
                decision["applied"] = triggers_brief(decision["applied"])
        return shown

    def dry_run_answer(self, session: dict[str, Any]) -> dict[str, Any]:
        """`?dry_run=true`'s answer on every endpoint: the shown session, lifetime, decisions.

        A call has no lifetime of its own to show (it lasts until hang-up).
        """
        lifetime = (
            {"expires_after": self.body["expires_after"]} if "expires_after" in self.body else {}
        )
        return {
            "dry_run": True,
            **lifetime,
            "session": session,
            "policy_decisions": self.shown_decisions(),
        }

    def log_fields(self) -> dict[str, Any]:
        """What the audit line says of the decision: model, voice, each decision in brief."""
        session = self.outcome.session
        voice = session.get("audio", {}).get("output", {}).get("voice")
        return {
            "model": session.get("model"),
            "voice": voice.get("id") if isinstance(voice, dict) else voice,
            "decisions": [f"{d.param}:{d.action}" for d in self.decisions],
        }


def plan(
    policy: Policy,
    session: AnySession,
    door: Door,
    *,
    caller: str,
    model_map: Mapping[str, str],
    ttl_seconds: int | None = None,
    call: bool = False,
) -> Plan:
    """The plan for one requested session; pure. A violation is a 403 in the door's names.

    `caller` is the caller as OpenAI sees it (`auth.caller_tag`); `model_map`
    is UPSTREAM_MODEL_MAP (allowed names to deployments); a `call` has no
    secret lifetime, so its body is the session alone.
    """
    try:
        outcome = evaluate(policy, session, caller_tag=caller, ttl_seconds=ttl_seconds)
    except PolicyViolation as violation:
        raise PolicyViolation([(door.param(p), m) for p, m in violation.found]) from None
    upstream = outcome.session.copy()
    model = upstream.get("model")
    if model is not None:
        upstream["model"] = model_map.get(model, model)
    if call:
        return Plan(door, policy, outcome, {"session": upstream})
    lifetime = {"anchor": "created_at", "seconds": outcome.ttl_seconds}
    body = {"expires_after": lifetime, "session": upstream}
    return Plan(door, policy, outcome, body, isinstance(session, TranslationSession))


CREATE_RESPONSE = "audio.input.turn_detection.create_response"
HELD_REASON = "responses are created by the server (CALLS_RESPONSES=server)"


def _hold(session: Mapping[str, Any]) -> SessionJSON:
    held: dict[str, Any] = copy.deepcopy(dict(session))
    audio_in = held.setdefault("audio", {}).setdefault("input", {})
    if "turn_detection" not in audio_in:
        audio_in["turn_detection"] = {"type": "server_vad"}  # the API's default, made explicit
    detection = audio_in["turn_detection"]
    if isinstance(detection, dict):  # null: turn detection off starts no response anyway
        detection["create_response"] = False
    return held  # type: ignore[return-value]


def held_responses(planned: Plan) -> Plan:
    """`CALLS_RESPONSES=server`: a Realtime call's turn detection starts no response
    (`create_response` pinned false, a fixed field for the supervisor); pure."""
    outcome = planned.outcome
    decision = Decision(CREATE_RESPONSE, "pinned", HELD_REASON, False)
    held = replace(
        outcome, session=_hold(outcome.session), decisions=(*outcome.decisions, decision)
    )
    body = {**planned.body, "session": _hold(planned.session)}
    return replace(planned, outcome=held, body=body)


def decide(
    services: Services,
    incoming: Incoming,
    session: AnySession,
    door: Door,
    *,
    ttl_seconds: int | None = None,
    call: bool = False,
    profile: str | None = None,
) -> Plan:
    """The flows' policy step: the caller's profile (or `profile`: a phone line's), the plan,
    its metrics and audit fields."""
    settings = services.settings
    if profile is None:
        caller = incoming.caller
        profile, policy = services.profiles.for_caller(caller.identity, caller.claim)
    else:
        policy = services.profiles.policy(profile)
    incoming.log["profile"] = profile
    try:
        planned = plan(
            policy,
            session,
            door,
            caller=caller_tag(incoming.caller, settings.auth_hash_identities),
            model_map=settings.upstream_model_map,
            ttl_seconds=ttl_seconds,
            call=call,
        )
        if call:
            _metered(settings, profile, planned)
    except PolicyViolation as violation:
        for param, _ in violation.found:
            metrics.POLICY_VIOLATIONS.labels(param).inc()
        raise
    for decision in planned.outcome.decisions:
        if decision.action == "clamped":
            metrics.POLICY_VIOLATIONS.labels(door.param(decision.param)).inc()
    incoming.log.update(planned.log_fields())
    return planned


def _metered(settings: Settings, profile: str, planned: Plan) -> None:
    """Under a dollar budget, a call's model must have a price: unpriced, its usage would
    cost nothing and the budget would not hold (403 naming the model)."""
    budget = settings.budget_for(profile)
    if not (budget.quota_usd_per_day or budget.calls_max_usd or settings.quota_usd_per_day_total):
        return
    model = planned.session.get("model")
    if isinstance(model, str) and settings.prices.price(model) is None:
        param = planned.door.param("model")
        raise PolicyViolation(
            [
                (
                    param,
                    f"model '{model}' has no price (PRICES_FILE) and a dollar budget applies: "
                    "its calls could not be metered",
                )
            ]
        )
