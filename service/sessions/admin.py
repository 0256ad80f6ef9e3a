"""Operators' controls over callers (`/admin`, `ADMIN_API_KEYS`): end their calls, suspend them.

Each action is one audit line naming the operator (`admin`), the action and
the caller, as audit lines name callers (`caller_tag`: what an operator
reads off the service's other lines). What the action does lives below:
suspensions and endings in the shared store (`service.limits.Suspensions`),
which every worker's supervisor acts on within one keeper pass; this
worker's calls of the caller are hung up at once. A phone call may be
transferred (`refer`), only to a target its number lists.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.core.clock import day_of
from service.core.errors import InvalidRequest, PolicyViolation
from service.policy import line_key
from service.sessions.context import Services
from service.upstream.calls import refer_call

log = structlog.get_logger("service.admin")
Body = TypeVar("Body", bound=BaseModel)
MAX_SUSPEND_SECONDS = 366 * 86_400
"""A suspension lasts at most a year: the store keeps nothing forever."""


class SuspendRequest(BaseModel):
    """`POST /admin/callers/{identity}/suspend`'s body."""

    model_config = ConfigDict(extra="forbid")
    seconds: int = Field(ge=1, le=MAX_SUSPEND_SECONDS)
    """How long new mints and calls of the caller are refused."""


def _read(model: type[Body], body: bytes) -> Body:
    """An `/admin` body, or a 400 in OpenAI's envelope naming its first bad field."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as invalid:
        first = invalid.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(f"Invalid value for '{param}': {first['msg']}.", param=param) from None


def _others_within_s(services: Services) -> float:
    """How soon the other workers act on an ending: their next keeper pass."""
    return round(services.settings.calls_lease_seconds / 3, 3)


DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_LISTED = 1000


async def usage(
    services: Services, admin: str, day: str | None, limit: str | None
) -> dict[str, Any]:
    """A UTC day's spending (today unless `day`, `YYYY-MM-DD`): the deployment's, each
    profile's, and the `limit` (default 100) costliest callers', with the deployment's
    ceiling. Counters last two days: older days report nothing."""
    today = day_of(services.supervisor.now_ms())
    if day is not None and (not DAY.fullmatch(day) or not _real_day(day)):
        raise InvalidRequest("Invalid value for 'day': expected YYYY-MM-DD.", param="day")
    listed = 100
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LISTED:
            raise InvalidRequest(
                f"Invalid value for 'limit': expected 1 to {MAX_LISTED}.", param="limit"
            )
        listed = int(limit)
    report = await services.supervisor.day_usage(day or today, listed)
    ceiling = services.settings.quota_usd_per_day_total
    report["limits"] = {"usd_per_day_total": str(ceiling) if ceiling is not None else None}
    log.info("admin_usage_read", admin=admin, day=day or today)
    return report


def _real_day(day: str) -> bool:
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


async def end_calls(services: Services, admin: str, caller: str) -> dict[str, Any]:
    """End every live call of `caller`, wherever it is supervised."""
    await services.suspensions.end_calls(caller)
    here = await services.supervisor.end_calls_of(caller)
    log.warning("admin_calls_ended", admin=admin, identity=caller, calls_here=here)
    return {
        "identity": caller,
        "calls_ended_here": here,
        "others_within_seconds": _others_within_s(services),
    }


async def suspend(services: Services, admin: str, caller: str, body: bytes) -> dict[str, Any]:
    """Suspend `caller` (403 `caller_suspended` for new mints and calls) and end their calls."""
    request = _read(SuspendRequest, body)
    suspension = await services.suspensions.suspend(caller, request.seconds, admin)
    here = await services.supervisor.end_calls_of(caller)
    log.warning(
        "admin_caller_suspended",
        admin=admin,
        identity=caller,
        seconds=request.seconds,
        calls_here=here,
    )
    return {
        "identity": caller,
        "suspended_until": suspension.until_ms // 1000,
        "calls_ended_here": here,
        "others_within_seconds": _others_within_s(services),
    }


async def lift(services: Services, admin: str, caller: str) -> dict[str, Any]:
    """Lift `caller`'s suspension (their calls ended with it stay ended)."""
    lifted = await services.suspensions.lift(caller)
    log.warning("admin_suspension_lifted", admin=admin, identity=caller, was_suspended=lifted)
    return {"identity": caller, "lifted": lifted}


class ReferRequest(BaseModel):
    """`POST /admin/calls/{call_id}/refer`'s body."""

    model_config = ConfigDict(extra="forbid")
    target_uri: str = Field(min_length=5, max_length=300)
    """Where the call goes (SIP REFER): one of its number's `transfer_targets`."""


async def refer(
    services: Services, admin: str, call_id: str, body: bytes, request_id: str
) -> dict[str, Any]:
    """Transfer a phone call, only to a target its number lists (403 otherwise, 404 for an
    id that is no phone call the service accepted)."""
    request = _read(ReferRequest, body)
    record = await services.supervisor.phone_call(call_id)
    lines = {line_key(number): line for number, line in services.profiles.phone.items()}
    line = lines.get(record.line or "")
    if line is None or request.target_uri not in line.transfer_targets:
        raise PolicyViolation(
            [("target_uri", "not one of the transfer_targets of this call's number")]
        )
    await refer_call(services.upstream, record.kind, call_id, request.target_uri, request_id)
    log.warning(
        "admin_call_referred",
        admin=admin,
        call_id=call_id,
        kind=record.kind,
        target=line.transfer_targets.index(request.target_uri),
    )
    return {"call_id": call_id, "referred": True}
