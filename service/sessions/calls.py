"""The call flows: a browser's offer in, a call created with the server's key, its answer out.

`POST /v1/realtime/calls` and `POST /v1/live/sessions` run the client-secret
flow with a call at its end instead of a secret:

1. read the request (`service.contract`): the SDP offer checked, the session
   parsed strictly (400 naming the field);
2. decide: the same rules as a client secret's session (GPT-Live its own),
   403 or clamp; with `CALLS_RESPONSES=server` a Realtime call's turn detection
   is pinned to `create_response=false` (the supervisor starts its responses);
3. `?dry_run=true` stops here and shows the effective session;
4. count the call against the caller's limits, as a mint;
5. hand it to the supervisor (`service.calls`), which admits it (budgets,
   live-call slots: 429 otherwise), creates it upstream (never retried once
   it may have arrived), records who created it and what the policy fixed,
   and supervises it until it ends.

The browser never holds a credential: it gets the SDP answer and the call
id. Hang-ups (`POST …/{id}/hangup`) and what the service does for the call
while it lasts (`GET …/{id}`) are the creator's alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.auth import caller_tag
from service.calls import NewCall
from service.contract import (
    CallKind,
    CallRequest,
    ga_param,
    read_live_session,
    read_realtime_call,
)
from service.sessions.context import Answer, Incoming, Services
from service.sessions.plan import NO_STORE, Door, Plan, decide, held_responses
from service.upstream.calls import CreatedCall

CALL = Door(ga_param)
"""GA names (`session.audio.output.voice`) in errors and decisions alike."""
BARE_OFFER = Door(lambda path: "model" if path == "model" else ga_param(path))
"""A bare offer's model came as `?model=`, so its refusal names `model`, as the caller sent it."""
PATHS: dict[CallKind, str] = {"realtime": "/v1/realtime/calls", "live": "/v1/live/sessions"}
"""Where each kind of call lives on this service (and on OpenAI's API)."""

Flow = Callable[[Services, Incoming], Awaitable[Answer]]


async def create_realtime_call(services: Services, incoming: Incoming) -> Answer:
    """`POST /v1/realtime/calls`: 201, the SDP answer, `Location` naming the call."""
    max_sdp = services.settings.calls_max_sdp_bytes
    request = read_realtime_call(incoming.body, incoming.session, max_sdp, incoming.model)
    door = BARE_OFFER if incoming.model is not None else CALL
    planned = decide(services, incoming, request.session, door, call=True)
    if services.settings.calls_responses == "server":
        planned = held_responses(planned)
        incoming.log.update(planned.log_fields())
    if incoming.dry_run:
        return _dry_run(incoming, request, planned)
    created, headers = await _create(services, incoming, "realtime", request, planned)
    headers["Location"] = f"{PATHS['realtime']}/{created.call_id}"
    return Answer(created.answer, headers, 201)


async def create_live_session(services: Services, incoming: Incoming) -> Answer:
    """`POST /v1/live/sessions`: OpenAI's `{session: {id}, transport}`, the session shown."""
    request = read_live_session(incoming.body, services.settings.calls_max_sdp_bytes)
    planned = decide(services, incoming, request.session, CALL, call=True)
    if incoming.dry_run:
        return _dry_run(incoming, request, planned)
    created, headers = await _create(services, incoming, "live", request, planned)
    answer = {
        "session": {**planned.shown(), "id": created.call_id},
        "transport": {"type": "webrtc", "sdp": created.answer},
    }
    return Answer(answer, headers)


def hang_up(kind: CallKind) -> Flow:
    """`POST …/{call_id}/hangup` for one kind of call: its creator only, else 404."""

    async def hang_up_call(services: Services, incoming: Incoming) -> Answer:
        incoming.log["call_id"] = incoming.call_id
        await services.supervisor.hang_up(
            kind, incoming.call_id, incoming.caller.identity, incoming.request_id
        )
        incoming.log["outcome"] = "hung_up"
        return Answer({}, NO_STORE)

    return hang_up_call


def call_state(kind: CallKind) -> Flow:
    """`GET …/{call_id}` for one kind of call: its creator only, else 404 (as a hang-up)."""

    async def read_call_state(services: Services, incoming: Incoming) -> Answer:
        incoming.log["call_id"] = incoming.call_id
        state = await services.supervisor.state(kind, incoming.call_id, incoming.caller.identity)
        return Answer(state.model_dump(mode="json"), NO_STORE)

    return read_call_state


def _dry_run(incoming: Incoming, request: CallRequest, planned: Plan) -> Answer:
    """Step 3: the effective session as the caller may see it, and the decisions."""
    incoming.log["sdp_bytes"] = len(request.offer.encode())
    return Answer(planned.dry_run_answer(planned.shown()), planned.headers())


async def _create(
    services: Services, incoming: Incoming, kind: CallKind, request: CallRequest, planned: Plan
) -> tuple[CreatedCall, dict[str, str]]:
    """Steps 4-5: count, then the supervisor admits, creates, records and supervises."""
    caller, log = incoming.caller, incoming.log
    log["sdp_bytes"] = len(request.offer.encode())
    tag = caller_tag(caller, services.settings.auth_hash_identities)
    verdict = await services.limiter.check(caller.identity, caller.ip, tag)
    headers = planned.headers()
    if verdict is not None:
        log["rate_limit_remaining"] = verdict.remaining
        headers.update(verdict.headers())
    new = NewCall(
        kind=kind,
        identity=caller.identity,
        caller=tag,
        policy=planned.policy,
        session=planned.session,
        decisions=planned.outcome.decisions,
        offer=request.offer,
        request_id=incoming.request_id,
    )
    created = await services.supervisor.open_call(new)
    log.update(
        outcome="created",
        call_id=created.call_id,
        upstream_status=created.upstream_status,
        upstream_ms=round(created.upstream_ms, 3),
        attempts=created.attempts,
    )
    return created, headers
