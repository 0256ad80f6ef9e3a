"""The client-secret flows: a requested session in, a short-lived `ek_…` minted under the policy.

Every door runs the same four steps, so a violation answers the same on each
and a dry run answers exactly as the real request would up to the mint:

1. read the door's request (`service.contract`): strict, 400 naming the
   field; the beta doors refuse what GA cannot carry and translate into
   OpenAI's GA session, the one shape the policy reasons about;
2. decide (`service.sessions.plan`): 403 listing every violation, or clamp
   and report; the effective session is the upstream body;
3. `?dry_run=true` stops here and shows what would be minted;
4. count the mint against the caller's limits (429 past them) and mint it
   on OpenAI's GA endpoint (translation sessions on its translation one).

Doors: `POST /v1/realtime/sessions` and `/transcription_sessions` (the beta
shapes in and out), `POST /v1/realtime/client_secrets` and
`/translations/client_secrets` (OpenAI's GA shapes).
"""

from __future__ import annotations

from typing import Any

from service.auth import caller_tag
from service.contract import (
    RealtimeSession,
    SecretRequest,
    beta_name,
    beta_param,
    beta_transcription_param,
    beta_view,
    ga_param,
    read_beta_session,
    read_beta_transcription,
    read_client_secret,
    read_translation,
    transcription_beta_view,
)
from service.sessions.context import Answer, Incoming, Services
from service.sessions.plan import Door, Plan, decide
from service.sessions.redaction import without_credentials
from service.upstream import Minted

BETA = Door(beta_param, beta_name)
"""Beta names in errors and decisions (`voice`, `client_secret.expires_after.seconds`)."""
GA_REALTIME = Door(ga_param, beta_name)
"""GA names in errors; decisions in the beta vocabulary, as both realtime doors report them."""
GA = Door(ga_param)
BETA_TRANSCRIPTION = Door(beta_transcription_param, beta_transcription_param)


async def create_session(services: Services, incoming: Incoming) -> Answer:
    """`POST /v1/realtime/sessions`: beta shape in, beta shape plus `client_secret` out."""
    request = read_beta_session(incoming.body)
    planned = decide(services, incoming, request.session, BETA, ttl_seconds=request.ttl_seconds)
    if incoming.dry_run:
        return Answer(
            planned.dry_run_answer(planned.redacted(_effective_beta(planned))), planned.headers()
        )
    minted, limits = await _mint(services, incoming, planned)
    reverse = {target: name for name, target in services.settings.upstream_model_map.items()}
    view = (
        beta_view(without_credentials(minted.session), reverse)
        if minted.session
        else _effective_beta(planned)
    )
    return Answer(_beta_answer(planned, view, minted), {**planned.headers(), **limits})


async def create_client_secret(services: Services, incoming: Incoming) -> Answer:
    """`POST /v1/realtime/client_secrets`: OpenAI's GA request and response shapes."""
    request = read_client_secret(incoming.body)
    door = GA_REALTIME if isinstance(request.session, RealtimeSession) else GA
    return await _answer_ga(services, incoming, request, door)


async def create_transcription_session(services: Services, incoming: Incoming) -> Answer:
    """`POST /v1/realtime/transcription_sessions`: beta shape in, beta shape plus secret out."""
    request = read_beta_transcription(incoming.body)
    planned = decide(
        services, incoming, request.session, BETA_TRANSCRIPTION, ttl_seconds=request.ttl_seconds
    )
    if incoming.dry_run:
        return Answer(
            planned.dry_run_answer(transcription_beta_view(planned.session)), planned.headers()
        )
    minted, limits = await _mint(services, incoming, planned)
    view = transcription_beta_view(minted.session or planned.session)
    return Answer(_beta_answer(planned, view, minted), {**planned.headers(), **limits})


async def create_translation_client_secret(services: Services, incoming: Incoming) -> Answer:
    """`POST /v1/realtime/translations/client_secrets`: OpenAI's GA translation shapes."""
    return await _answer_ga(services, incoming, read_translation(incoming.body), GA)


async def _answer_ga(
    services: Services, incoming: Incoming, request: SecretRequest, door: Door
) -> Answer:
    """Steps 2-4 for the GA doors: OpenAI's `{value, expires_at, session}`, or the dry run."""
    planned = decide(services, incoming, request.session, door, ttl_seconds=request.ttl_seconds)
    if incoming.dry_run:
        return Answer(planned.dry_run_answer(planned.shown()), planned.headers())
    minted, limits = await _mint(services, incoming, planned)
    answer = {
        "value": minted.value,
        "expires_at": minted.expires_at,
        "session": without_credentials(minted.session or planned.session),
    }
    return Answer(answer, {**planned.headers(), **limits})


async def _mint(
    services: Services, incoming: Incoming, planned: Plan
) -> tuple[Minted, dict[str, str]]:
    """Step 4: count the mint against the caller's limits, then mint; the limits' headers."""
    caller = incoming.caller
    tag = caller_tag(caller, services.settings.auth_hash_identities)
    verdict = await services.limiter.check(caller.identity, caller.ip, tag)
    minted = await services.upstream.mint_client_secret(
        planned.body, incoming.request_id, translation=planned.translation
    )
    incoming.log.update(
        outcome="minted",
        upstream_status=minted.upstream_status,
        upstream_ms=round(minted.upstream_ms, 3),
        attempts=minted.attempts,
        upstream_session_id=minted.session.get("id"),
        expires_at=minted.expires_at,
    )
    if verdict is None:
        return minted, {}
    incoming.log["rate_limit_remaining"] = verdict.remaining
    return minted, verdict.headers()


def _beta_answer(planned: Plan, view: dict[str, Any], minted: Minted) -> dict[str, Any]:
    """A beta door's answer: the session in its shape, the secret, the decisions."""
    return {
        **view,
        "client_secret": {"value": minted.value, "expires_at": minted.expires_at},
        "policy_decisions": planned.shown_decisions(),
    }


def _effective_beta(planned: Plan) -> dict[str, Any]:
    """The effective session in the beta shape, only the fields it sets (beta dry runs)."""
    session = planned.outcome.session
    view = beta_view(session, {})
    audio_in = (session.get("audio") or {}).get("input") or {}
    return {
        key: value
        for key, value in view.items()
        if value is not None or (key == "turn_detection" and "turn_detection" in audio_in)
        if key not in ("id", "object")
    }
