"""The mint pipeline every endpoint shares: parse, check, decide, mint.

A request's path through the service, in order:

1. parse the endpoint's body strictly (400 naming the field);
2. beta endpoints: refuse what the GA API cannot carry (400,
   `unsupported_parameter`), then translate the request into OpenAI's GA
   session, the one shape the policy reasons about;
3. apply the policy to the GA session (403 listing every violation, or
   clamp and report): the effective session is the upstream body;
4. mint upstream (or, for `?dry_run=true`, stop and show what would be sent).

Every endpoint runs exactly this, so a violation answers the same on either
door, and a dry run answers exactly as the real request would up to step 4.
The realtime doors are here; the transcription and translation doors in
`service.api.mint_sessions`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.api.redaction import (
    REDACTED,
    delegation_brief,
    redact,
    server_set,
    tool_name,
    without_credentials,
)
from service.auth import Caller
from service.config import Settings
from service.contract import (
    ClientSecretRequest,
    RealtimeSession,
    SessionRequest,
    TranscriptionSession,
    TranslationSession,
    beta_name,
    beta_param,
    beta_view,
    check_carriable,
    ga_param,
    parse,
    to_ga,
    translated,
)
from service.core import metrics
from service.core.errors import PolicyViolation
from service.limits import Limiter
from service.policy import (
    Outcome,
    Policy,
    evaluate,
    evaluate_transcription,
    evaluate_translation,
)
from service.upstream import Minted, Upstream

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Answers carry secrets or session details: no cache may keep them."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the policy decided and the exact body that goes upstream."""

    outcome: Outcome
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    """Response headers the later steps add (rate-limit state)."""
    translation: bool = False
    """Minted on OpenAI's translation endpoint rather than `client_secrets`."""

    def header(self) -> str:
        """`param=action, ...`: the decisions in brief, for the X-Policy-Decisions header."""
        return ", ".join(f"{d.param}={d.action}" for d in self.outcome.decisions)

    def response_headers(self) -> dict[str, str]:
        """Every answer's headers: never cached, the limits' state, the decisions in brief."""
        headers = {**NO_STORE, **self.headers}
        brief = self.header()
        if brief:
            headers["X-Policy-Decisions"] = brief
        return headers

    def shown(self) -> dict[str, Any]:
        """The upstream session as a caller may see it (what the server set, redacted)."""
        return self.redacted(self.body["session"])

    def decisions(self) -> list[dict[str, Any]]:
        """The policy's decisions as JSON, operator-only values redacted (`GET /v1/policy`
        hides the server's instructions and tool definitions; so do these)."""
        shown = [decision.as_dict() for decision in self.outcome.decisions]
        for decision in shown:
            if decision["param"] == "instructions" and decision["applied"] is not None:
                decision["applied"] = REDACTED
            elif decision["param"] == "tools" and decision["applied"]:
                decision["applied"] = [tool_name(tool) for tool in decision["applied"]]
            elif decision["param"] == "delegation":
                decision["applied"] = delegation_brief(decision["applied"])
        return shown

    def redacted(self, session: dict[str, Any]) -> dict[str, Any]:
        """`session` as a dry run shows it: what the server set, redacted."""
        return redact(session, server_set(self.outcome.decisions))

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
            "policy_decisions": self.decisions(),
        }

    def beta_answer(self, view: dict[str, Any], minted: Minted) -> dict[str, Any]:
        """A beta endpoint's answer: the session in its shape, the secret, the decisions."""
        return {
            **view,
            "client_secret": {"value": minted.value, "expires_at": minted.expires_at},
            "policy_decisions": self.decisions(),
        }


@dataclass(frozen=True, slots=True)
class MintContext:
    """Everything one mint needs, wired by the endpoint from the lifespan state."""

    settings: Settings
    upstream: Upstream
    limiter: Limiter
    caller: Caller
    fields: dict[str, Any]

    def policy(self) -> Policy:
        """The caller's policy (their profile's, else the env policy), noted for the log."""
        profile, policy = self.settings.profiles.for_caller(self.caller.identity, self.caller.claim)
        self.fields["profile"] = profile
        return policy

    def caller_tag(self) -> str:
        """The caller as written into trace metadata (hashed if AUTH_HASH_IDENTITIES)."""
        identity = self.caller.identity
        if self.settings.auth_hash_identities:
            return hashlib.sha256(identity.encode()).hexdigest()[:32]
        return identity


AnySession = RealtimeSession | TranscriptionSession | TranslationSession


def _evaluate(
    context: MintContext,
    session: AnySession,
    ttl_seconds: int | None,
    name: Callable[[str], str],
    label: Callable[[str], str],
) -> Outcome:
    policy = context.policy()
    if isinstance(session, RealtimeSession):
        return evaluate(policy, session, ttl_seconds, name, context.caller_tag(), label)
    if isinstance(session, TranscriptionSession):
        return evaluate_transcription(policy, session, ttl_seconds, name, label)
    return evaluate_translation(policy, session, ttl_seconds, name, label)


def plan(
    context: MintContext,
    session: AnySession,
    ttl_seconds: int | None,
    name: Callable[[str], str] = beta_param,
    label: Callable[[str], str] = beta_name,
) -> Plan:
    """Steps 3-4: decide, translate. Pure; raises 403 as a `PolicyViolation`.

    `name` spells fields in errors as the caller's endpoint does, `label` in
    decisions (the beta vocabulary for realtime sessions, as before GA).
    """
    outcome = decide(lambda: _evaluate(context, session, ttl_seconds, name, label), name)
    body = {
        "expires_after": {"anchor": "created_at", "seconds": outcome.ttl_seconds},
        "session": upstream_session(context.settings, outcome),
    }
    return Plan(outcome, body, translation=isinstance(session, TranslationSession))


def decide(evaluate: Callable[[], Outcome], name: Callable[[str], str]) -> Outcome:
    """Run one policy evaluation, counting each violation by field in the metrics."""
    try:
        outcome = evaluate()
    except PolicyViolation as violation:
        for item in violation.extra["violations"]:
            metrics.POLICY_VIOLATIONS.labels(item["param"]).inc()
        raise
    for decision in outcome.decisions:
        if decision.action == "clamped":
            metrics.POLICY_VIOLATIONS.labels(name(decision.param)).inc()
    return outcome


def upstream_session(settings: Settings, outcome: Outcome) -> dict[str, Any]:
    """The effective session as sent upstream: the model renamed by UPSTREAM_MODEL_MAP."""
    session = dict(outcome.session)
    model = session.get("model")
    if isinstance(model, str):
        session["model"] = settings.upstream_model_map.get(model, model)
    return session


def _effective_beta(outcome: Outcome) -> dict[str, Any]:
    """The effective session in the beta shape, only the fields it sets (beta dry runs)."""
    session = outcome.session
    view = beta_view(session, {})
    audio_in = (session.get("audio") or {}).get("input") or {}
    return {
        key: value
        for key, value in view.items()
        if value is not None or (key == "turn_detection" and "turn_detection" in audio_in)
        if key not in ("id", "object")
    }


def log_fields(fields: dict[str, Any], endpoint: str, planned: Plan) -> None:
    session = planned.outcome.session
    voice = ((session.get("audio") or {}).get("output") or {}).get("voice")
    fields.update(
        endpoint=endpoint,
        model=session.get("model"),
        voice=voice.get("id") if isinstance(voice, dict) else voice,
        decisions=[f"{d.param}:{d.action}" for d in planned.outcome.decisions],
    )


async def count_mint(context: MintContext, planned: Plan) -> None:
    """Count one mint (or call) against the caller's limits: 429 past them."""
    verdict = await context.limiter.check(context.caller.identity, context.caller.ip)
    if verdict is not None:
        context.fields["rate_limit_remaining"] = verdict.remaining
        planned.headers.update(verdict.headers())


async def mint_upstream(context: MintContext, planned: Plan) -> Minted:
    """Step 5: count the mint against the caller's limits, then mint upstream."""
    fields = context.fields
    await count_mint(context, planned)
    minted = await context.upstream.mint_client_secret(
        planned.body, fields["request_id"], translation=planned.translation
    )
    fields.update(
        outcome="minted",
        upstream_status=minted.upstream_status,
        upstream_ms=round(minted.upstream_ms, 3),
        attempts=minted.attempts,
        upstream_session_id=minted.session.get("id"),
        expires_at=minted.expires_at,
    )
    return minted


async def dry_run_allowed(context: MintContext) -> None:
    """Count a dry run against RATE_LIMIT_DRY_RUN_PER_IDENTITY (429 past it).

    The endpoint counts it before parsing, so refused dry runs count too:
    each costs the service the same work, whatever the policy answers.
    """
    context.fields["outcome"] = "dry_run"
    verdict = await context.limiter.check_dry_run(context.caller.identity)
    if verdict is not None:
        context.fields["rate_limit_remaining"] = verdict.remaining


def _reverse_map(settings: Settings) -> dict[str, str]:
    return {target: name for name, target in settings.upstream_model_map.items()}


async def create_session(
    context: MintContext, body: bytes, dry_run: bool
) -> tuple[dict[str, Any], Plan]:
    """`POST /v1/realtime/sessions`: beta shape in, beta shape plus `client_secret` out."""
    request = parse(SessionRequest, body, beta=True)
    check_carriable(request)
    expires = request.client_secret.expires_after if request.client_secret else None
    session = translated(RealtimeSession, to_ga(request))
    planned = plan(context, session, expires.seconds if expires else None)
    log_fields(context.fields, "sessions", planned)
    if dry_run:
        return planned.dry_run_answer(planned.redacted(_effective_beta(planned.outcome))), planned
    minted = await mint_upstream(context, planned)
    view = (
        beta_view(without_credentials(minted.session), _reverse_map(context.settings))
        if minted.session
        else _effective_beta(planned.outcome)
    )
    return planned.beta_answer(view, minted), planned


async def create_client_secret(
    context: MintContext, body: bytes, dry_run: bool
) -> tuple[dict[str, Any], Plan]:
    """`POST /v1/realtime/client_secrets`: OpenAI's GA request and response shapes."""
    request = parse(ClientSecretRequest, body)
    session = request.session or RealtimeSession(type="realtime")
    seconds = request.expires_after.seconds if request.expires_after else None
    label = beta_name if isinstance(session, RealtimeSession) else str
    planned = plan(context, session, seconds, ga_param, label)
    log_fields(context.fields, "client_secrets", planned)
    return await answer_ga(context, planned, dry_run)


async def answer_ga(
    context: MintContext, planned: Plan, dry_run: bool
) -> tuple[dict[str, Any], Plan]:
    """Step 5 for the GA endpoints: OpenAI's `{value, expires_at, session}`, or the dry run."""
    if dry_run:
        return planned.dry_run_answer(planned.shown()), planned
    minted = await mint_upstream(context, planned)
    return {
        "value": minted.value,
        "expires_at": minted.expires_at,
        "session": without_credentials(minted.session or planned.body["session"]),
    }, planned
