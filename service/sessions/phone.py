"""Phone calls: OpenAI's signed webhooks in, each pending SIP call accepted under the policy.

`POST /v1/webhooks/openai` (the edge verified the signature) hands the event here:

1. read it (`service.contract.webhooks`): an unknown type or a missing field
   is a 400, and nothing is done;
2. once per `webhook-id`: the id is claimed in the shared store for
   `WEBHOOK_KEPT_S` (OpenAI redelivers for up to three days, each time with a
   fresh signature and the same id), so a redelivery, or the same delivery
   reaching two workers, gets 200 and nothing more;
3. a pending call: its `To` picks the number's line (`[phone."+1..."]` in the
   profiles file); the line's `kind` picks which of the call's webhooks the
   service acts on (`realtime.call.incoming` or `live.transport.incoming`),
   the other is answered 200 and ignored. A number no line lists is rejected
   (603, `PHONE_UNKNOWN_NUMBER=reject`, on the Realtime webhook) or answered
   by the profile named there as a Realtime call;
4. one accept per call: the call id is claimed in the store as well (two
   webhooks with different ids, two replicas);
5. the accept runs in a task the supervisor owns (`Supervisor.later`), so the
   webhook's answer never waits on OpenAI: the session is the line's profile's
   alone (no client field exists on a phone call), decided as a server-created
   call's is; the caller's limits are counted, then the supervisor admits
   (budgets, the caller's and the number's live calls), accepts, records and
   supervises it as any call. Refused: the call is rejected with a SIP status
   (486 Busy Here for a full line; `PHONE_BUDGET_REJECT_STATUS` for a budget or a
   caller's limit; 603 Decline otherwise). Each accept or reject is one audit
   line, `endpoint="phone"`, and counts in `rtp_mints_total{endpoint="phone"}`.

`safety_identifier.blocked` suspends the caller OpenAI names by the identifier
the service sent (`caller_tag`) for `SAFETY_SUSPEND_SECONDS`; their calls end.

**Privacy.** The `From` header is the caller's untrusted hint: its number is
hashed into the caller's identity (`phone:<hash>`), for limits and usage only,
and selects nothing. Numbers and SIP headers are never logged, only hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import orjson
import structlog

from service.auth import Caller, caller_tag
from service.calls import NewCall
from service.contract import LiveSession, RealtimeSession, ga_param, parse
from service.contract.calls import CALL_ID, CallKind
from service.contract.effective import SessionJSON
from service.contract.webhooks import EVENT_TYPES, SAFETY_BLOCKED, IncomingCall, SafetyBlocked
from service.core import metrics
from service.core.errors import InvalidRequest, NotFound, RateLimited, ServiceError
from service.policy import PhoneLine, dialled_number
from service.policy import line_key as number_hash
from service.sessions.context import Incoming, Services
from service.sessions.plan import Door, decide, held_responses
from service.store import StoreUnavailable
from service.upstream.calls import reject_call

log = structlog.get_logger("service.phone")

WEBHOOK_KEPT_S = 4 * 86_400
"""How long a handled `webhook-id` (and a claimed call) is remembered: past OpenAI's three
days of redeliveries, far past the signature's 5-minute tolerance."""
BUSY = 486
DECLINE = 603
PHONE = Door(ga_param)
LIVE_ACCEPTED = frozenset(
    {"model", "audio", "delegation", "input", "instructions", "safety_identifier", "store"}
    | {"triggers"}
)
"""What GPT-Live's accept takes (the SDK's `SessionAcceptParams.session`): a SIP call has
no data channel, so no `client`."""


async def receive_webhook(
    services: Services, body: bytes, webhook_id: str, log_fields: dict[str, Any]
) -> None:
    """Steps 1-5 for one verified delivery; a 400 for what this service does not know."""
    event_type = _event_type(body)
    log_fields["webhook_event"] = event_type
    if event_type not in EVENT_TYPES:
        raise InvalidRequest(f"Unknown webhook event type '{event_type}'.", param="type")
    event: IncomingCall | SafetyBlocked = (
        parse(SafetyBlocked, body) if event_type == SAFETY_BLOCKED else parse(IncomingCall, body)
    )
    key = f"rtp:webhook:{hashlib.blake2b(webhook_id.encode(), digest_size=16).hexdigest()}"
    if not await services.store.put_if_absent(key, "1", WEBHOOK_KEPT_S * 1000):
        log_fields["outcome"] = "redelivery"
        return
    try:
        if isinstance(event, SafetyBlocked):
            await _suspend(services, event, log_fields)
        else:
            await _incoming(services, event, log_fields)
    except BaseException:
        # Not handled after all (the store failed, say): OpenAI's redelivery must act.
        with contextlib.suppress(StoreUnavailable):
            await services.store.delete(key)
        raise


def _event_type(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The webhook body must be JSON.", code="invalid_json") from None
    kind = data.get("type") if isinstance(data, dict) else None
    return kind[:64] if isinstance(kind, str) else ""


async def _suspend(services: Services, event: SafetyBlocked, log_fields: dict[str, Any]) -> None:
    """Step 6: OpenAI blocked the caller this identifier names; suspend them, end their calls."""
    caller = event.data.safety_identifier
    seconds = services.settings.safety_suspend_seconds
    await services.suspensions.suspend(caller, seconds, "openai:safety_identifier.blocked")
    here = await services.supervisor.end_calls_of(caller)
    metrics.SAFETY_BLOCKS.inc()
    log_fields["outcome"] = "suspended"
    log.warning(
        "caller_suspended_by_openai",
        identity=caller,
        seconds=seconds,
        category=event.data.safety_category,
        calls_here=here,
    )


async def _incoming(services: Services, event: IncomingCall, log_fields: dict[str, Any]) -> None:
    """Steps 3-5: pick the line, claim the call, and accept or reject it off the request."""
    call_id = event.pending_id
    if call_id is None or not CALL_ID.fullmatch(call_id):
        raise InvalidRequest("The webhook names no valid call id.", param="data")
    log_fields["call_id"] = call_id
    if event.type == "live.transport.incoming" and event.data.type != "sip":
        log_fields["outcome"] = "ignored"
        return
    to = dialled_number(event.data.header("To") or "")
    log_fields["number"] = number_hash(to) if to else None
    line = services.profiles.phone.get(to) if to else None
    unknown = services.settings.phone_unknown_number
    if line is None and unknown != "reject":
        line = PhoneLine(to or "", unknown, "realtime")
    # The line's kind, and only it: the call's other webhook is the same call.
    acting: CallKind = line.kind if line is not None else "realtime"
    if event.kind != acting:
        log_fields["outcome"] = "other_kind"
        return
    claim = f"rtp:phone:{event.kind}:{call_id}"
    if not await services.store.put_if_absent(claim, "1", WEBHOOK_KEPT_S * 1000):
        log_fields["outcome"] = "claimed_elsewhere"
        return
    from_number = dialled_number(event.data.header("From") or "")
    identity = f"phone:{number_hash(from_number) if from_number else 'unknown'}"
    request_id = str(log_fields.get("request_id", ""))
    fields = {
        "endpoint": "phone",
        "request_id": request_id,
        "call_id": call_id,
        "kind": event.kind,
        "number": log_fields["number"],
    }
    log_fields["outcome"] = "answering"
    if line is None:
        services.supervisor.later(
            _reject(services, event.kind, call_id, DECLINE, fields, "unknown_number")
        )
        return
    services.supervisor.later(_answer(services, event.kind, call_id, line, identity, fields))


def phone_session(kind: CallKind, session: SessionJSON) -> SessionJSON:
    """The effective session as a SIP accept takes it: the media format is SIP's to negotiate
    (G.711 or Opus with the trunk; GPT-Live's accept refuses `audio.format` on SIP), so the
    policy's formats are left out; GPT-Live's accept takes no `client` (no data channel)."""
    shaped: dict[str, Any] = dict(session)
    if kind == "live":
        shaped = {k: v for k, v in shaped.items() if k in LIVE_ACCEPTED}
    audio = shaped.get("audio")
    if isinstance(audio, dict):
        trimmed = {
            side: {k: v for k, v in part.items() if k != "format"}
            for side, part in audio.items()
            if isinstance(part, dict)
        }
        if kind == "live":
            trimmed = {"output": trimmed["output"]} if "output" in trimmed else {}
        shaped["audio"] = {side: part for side, part in trimmed.items() if part}
        if not shaped["audio"]:
            del shaped["audio"]
    return shaped  # type: ignore[return-value]


async def _answer(
    services: Services,
    kind: CallKind,
    call_id: str,
    line: PhoneLine,
    identity: str,
    fields: dict[str, Any],
) -> None:
    """Step 5 in the supervisor's task: decide, count, admit, accept (or reject)."""
    settings = services.settings
    caller = Caller(identity, identity)
    tag = caller_tag(caller, settings.auth_hash_identities)
    fields["identity"] = tag
    incoming = Incoming(caller, b"", False, fields)
    try:
        requested = RealtimeSession(type="realtime") if kind == "realtime" else LiveSession()
        planned = decide(services, incoming, requested, PHONE, call=True, profile=line.profile)
        if kind == "realtime" and settings.calls_responses == "server":
            planned = held_responses(planned)
        session = phone_session(kind, planned.session)
        await services.limiter.check(identity, identity, tag)
        new = NewCall(
            kind=kind,
            identity=identity,
            caller=tag,
            policy=planned.policy,
            session=session,
            decisions=planned.outcome.decisions,
            offer="",
            request_id=fields["request_id"],
        )
        line_key = number_hash(line.number) if line.number else None
        elapsed_ms = await services.supervisor.accept_call(new, call_id, line_key)
    except RateLimited as refused:
        busy = refused.code == "line_busy"
        status = BUSY if busy else settings.phone_budget_reject_status
        await _reject(services, kind, call_id, status, fields, refused.code or "rate_limited")
        return
    except NotFound:
        _outcome(fields, "gone", None)  # the caller hung up before the accept
        return
    except ServiceError as error:
        await _reject(services, kind, call_id, DECLINE, fields, error.code or "refused")
        return
    except Exception as fault:
        # Nothing awaits this task: the fault is logged here, and the caller declined.
        log.exception("phone_call_failed", call_id=call_id, error=type(fault).__name__)
        await _reject(services, kind, call_id, DECLINE, fields, "internal_error")
        return
    fields["upstream_ms"] = round(elapsed_ms, 3)
    _outcome(fields, "accepted", None)


async def _reject(
    services: Services,
    kind: CallKind,
    call_id: str,
    status: int,
    fields: dict[str, Any],
    reason: str,
) -> None:
    """Decline the pending call with a SIP status; a failure is logged (OpenAI times it out)."""
    try:
        await reject_call(services.upstream, kind, call_id, status, fields["request_id"])
    except ServiceError as error:
        fields["reject_error"] = error.code
    fields["reason"] = reason
    _outcome(fields, "rejected", status)


def _outcome(fields: dict[str, Any], outcome: str, status: int | None) -> None:
    """The call's audit line (`endpoint="phone"`) and its count."""
    metrics.MINTS.labels("phone", outcome).inc()
    log.info("phone_call", outcome=outcome, sip_status=status, **fields)
