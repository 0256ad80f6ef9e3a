"""The call pipeline: a browser's offer in, a call created with the server's key, its answer out.

`POST /v1/realtime/calls` and `POST /v1/live/sessions` run the mint pipeline
(`service.api.mint`) with a call at its end instead of a client secret:

1. check the SDP offer (`service.calls.check_offer`) and parse the session
   strictly (400 naming the field);
2. apply the policy (Realtime: the same rules as a client secret's session;
   GPT-Live: `service.policy.rules_live`), 403 or clamp;
3. `?dry_run=true` stops here and shows the effective session;
4. count the call against the caller's limits, as a mint;
5. admit it: the caller's daily budgets and live-call slots (429 otherwise);
6. create the call upstream (never retried once it may have arrived);
7. record it (who created it, what the policy fixed) and supervise it until
   it ends (`service.calls.Supervisor`).

The browser never holds a credential: it gets the SDP answer and the call id.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass
from typing import Any

import structlog

from service.api.mint import (
    MintContext,
    Plan,
    count_mint,
    decide,
    log_fields,
    plan,
    upstream_session,
)
from service.calls import CallRecord, Supervisor, check_offer, fixed_fields
from service.contract import RealtimeSession, ga_param, parse
from service.contract.calls import CallKind
from service.contract.live import LiveCreateRequest
from service.policy.rules_live import evaluate_live
from service.store import StoreUnavailable
from service.upstream.calls import CreatedCall, create_live_session, create_realtime_call

log = structlog.get_logger("service.calls")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What the policy decided for a call, and the offer to send with it."""

    planned: Plan
    offer: str


def _live_param(path: str) -> str:
    return f"session.{path}"


def plan_realtime_call(context: MintContext, offer: bytes, session_json: bytes | None) -> CallPlan:
    """Steps 1-2 for `POST /v1/realtime/calls`: the offer, then the session under the policy."""
    sdp = check_offer(offer, context.settings.calls_max_sdp_bytes)
    session = (
        parse(RealtimeSession, session_json, prefix="session")
        if session_json is not None
        else RealtimeSession(type="realtime")
    )
    planned = plan(context, session, None, ga_param, str)
    planned = dataclasses.replace(planned, body={"session": planned.body["session"]})
    log_fields(context.fields, "realtime_calls", planned)
    context.fields["sdp_bytes"] = len(sdp.encode())
    return CallPlan(planned, sdp)


def plan_live_session(context: MintContext, body: bytes) -> CallPlan:
    """Steps 1-2 for `POST /v1/live/sessions`: strict Live session, offer, Live policy."""
    request = parse(LiveCreateRequest, body)
    sdp = check_offer(request.transport.sdp, context.settings.calls_max_sdp_bytes, "transport.sdp")
    policy = context.policy()
    outcome = decide(
        lambda: evaluate_live(policy, request.session, context.caller_tag(), _live_param),
        _live_param,
    )
    planned = Plan(outcome, {"session": upstream_session(context.settings, outcome)})
    log_fields(context.fields, "live_sessions", planned)
    context.fields["sdp_bytes"] = len(sdp.encode())
    return CallPlan(planned, sdp)


def dry_run_answer(call: CallPlan) -> dict[str, Any]:
    """Step 3: the effective session as the caller may see it, and the decisions."""
    return call.planned.dry_run_answer(call.planned.shown())


async def create_call(
    context: MintContext, supervisor: Supervisor, kind: CallKind, call: CallPlan
) -> CreatedCall:
    """Steps 4-6: count, admit, create upstream, record, supervise."""
    await count_mint(context, call.planned)
    identity, rid = context.caller.identity, context.fields["request_id"]
    # The slot's name is the server's own, never a caller's value (X-Request-ID).
    slot = await supervisor.admit(identity, kind, secrets.token_hex(8))
    session = call.planned.body["session"]
    try:
        if kind == "realtime":
            created = await create_realtime_call(context.upstream, call.offer, session, rid)
        else:
            created = await create_live_session(context.upstream, call.offer, session, rid)
    except BaseException:
        await supervisor.unadmit(identity, slot)
        raise
    context.fields.update(
        outcome="created",
        call_id=created.call_id,
        upstream_status=created.upstream_status,
        upstream_ms=round(created.upstream_ms, 3),
        attempts=created.attempts,
    )
    started = int(time.time() * 1000)
    record = CallRecord(
        kind=kind,
        call_id=created.call_id,
        identity=identity,
        started_ms=started,
        deadline_ms=started + context.settings.calls_max_seconds * 1000,
        fixed=fixed_fields(kind, context.policy(), session, call.planned.outcome.decisions),
        slot=slot,
    )
    recorded = True
    try:
        await supervisor.records.record(record)
    except StoreUnavailable:
        # The call exists and the browser needs its answer: losing it would leave a
        # billed call nobody can use. Supervision goes on in this worker, which
        # writes the record once the store answers (until then the service's
        # hang-up answers 404; the browser can still close its connection).
        log.error("call_record_failed", call_id=created.call_id, kind=kind)
        recorded = False
    await supervisor.watch(record, recorded=recorded)
    return created


def live_answer(call: CallPlan, created: CreatedCall) -> dict[str, Any]:
    """OpenAI's `{session: {id}, transport}` answer, with the effective session shown (redacted)."""
    shown = call.planned.shown()
    return {
        "session": {**shown, "id": created.call_id},
        "transport": {"type": "webrtc", "sdp": created.answer},
    }
