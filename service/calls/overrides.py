"""What the supervisor does about a call that breaks the policy: revert, cancel, delete, hang up.

`CallLoop` hands `Overrides` each `session.updated` (`session_updated`) and
each Realtime response, item and output item (`realtime_event`). What breaks
the policy is decided by `service.calls.fixed` (what the policy fixed) and
`service.calls.breaches` (every other rule, with the caller's profile); here
it is acted on by `CALLS_ON_OVERRIDE`:

- `revert`: one `session.update` restoring every breached session field; a
  `response.cancel` for a response (its voice, modalities, token cap, a
  tool call the policy does not offer, or under `CALLS_RESPONSES=server` any
  response the supervisor did not start: field `metadata`); a `conversation.item.delete` for a
  system or developer message while the server sets the instructions. An
  unrevertible field (the model) and a call past `MAX_REVERTS_PER_MINUTE`
  actions (it will not keep the policy) are hung up;
- `hangup`: the call is hung up.

Each override is one audit line `call_policy_override` (the call, the
caller, `scope`, `fields`, the `action` done; of an item only its type, role
and size, never content), one count of `rtp_call_overrides_total{scope,action}`,
and an entry in the call's record, written at once (its owner is watching).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import structlog

from service.calls.breaches import (
    Breach,
    foreign_instructions,
    readable,
    response_breaches,
    session_breaches,
    size_of,
    tool_breach,
)
from service.calls.fixed import (
    CREATE_RESPONSE,
    MAX_DEPTH,
    TURN_DETECTION,
    deeper_than,
    overridden,
    restoring,
    revertible,
    value_at,
)
from service.calls.records import Outcome, Scope
from service.calls.state import noted, settled
from service.calls.watched import Watched
from service.config import Settings
from service.core import metrics
from service.core.clock import Clock
from service.policy import Policy
from service.upstream.sideband import SidebandConnection

log = structlog.get_logger("service.calls")
MAX_REVERTS_PER_MINUTE = 10
DEFAULT_PROFILE = "default"
"""The base policy's name among the profiles (`Profiles.all`)."""
Action = Literal["revert", "cancel", "delete", "hangup"]
"""What the supervisor did about an override, as its audit line and
`rtp_call_overrides_total{scope,action}` say."""
ACTED: dict[Action, Outcome] = {"cancel": "cancelled", "delete": "deleted"}


class Overrides:
    """Acts on what breaks the policy in a call's events; one per supervisor.

    `write` writes a call's record now; `hang_up` ends a call upstream (True once over).
    Each method returns True once the call was hung up for an override.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        write: Callable[[Watched], Awaitable[None]],
        hang_up: Callable[[Watched, str], Awaitable[bool]],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._write = write
        self._hang_up = hang_up
        self._policies = dict(settings.profiles.all())
        self._rules = {
            name: policy.model_copy(update={"on_violation": "clamp"})
            for name, policy in self._policies.items()
        }

    async def session_updated(
        self, call: Watched, connection: SidebandConnection, session: Mapping[str, Any]
    ) -> bool:
        """Compare a `session.updated` with the policy (what it fixed, then every rule);
        restore every breached field in one `session.update`, or hang up."""
        record = call.record
        paths = overridden(record.fixed, session)
        breaches = self._breaches(call, session)
        fields = [*paths, *(breach.field for breach in breaches)]
        now = self._clock()
        reverted = settled(record, fields, now)
        if not fields:
            if reverted:
                await self._write(call)
            return False
        if (
            self._settings.calls_on_override == "revert"
            and revertible(paths)
            and not self._looping(call)
        ):
            self._audit(call, "session", fields, "revert")
            values = {**record.fixed, **{breach.path: breach.value for breach in breaches}}
            restore = [*paths, *(breach.path for breach in breaches)]
            detection = value_at(session, TURN_DETECTION)
            if deeper_than(detection, MAX_DEPTH):
                # Never copied that deep: the call's own goes back (off, if it had none).
                detection = value_at(record.created, TURN_DETECTION)
                if detection is None and CREATE_RESPONSE in restore:
                    values[TURN_DETECTION] = None
                    restore.append(TURN_DETECTION)
            await connection.send(restoring(record.kind, values, restore, detection))
            noted(record, fields, now, "reverting")
            await self._write(call)
            return False
        return await self._hang_up_for(call, "session", fields)

    def _policy(self, call: Watched) -> tuple[Policy, Policy]:
        """The caller's policy, and the same with `on_violation=clamp` (for `evaluate`).

        A profile this worker does not know (a call adopted from a worker with
        another configuration) is checked against the base policy.
        """
        profile = call.record.profile
        if profile not in self._policies:
            profile = DEFAULT_PROFILE
        return self._policies[profile], self._rules[profile]

    def _breaches(self, call: Watched, session: Mapping[str, Any]) -> list[Breach]:
        record = call.record
        request, unread = readable(record.kind, session, record.fixed)
        if unread:
            # Names only: which fields this version's contract could not judge.
            log.warning("call_session_fields_unread", call_id=record.call_id, fields=unread)
        if request is None:
            return []
        policy, rules = self._policy(call)
        try:
            return session_breaches(
                rules, policy.on_violation, request, record.fixed, record.created, record.caller
            )
        except Exception:
            # A fault in the rules must not stop the fixed fields' reverts: those go on.
            log.exception("call_policy_check_failed", call_id=record.call_id)
            return []

    async def realtime_event(
        self, call: Watched, connection: SidebandConnection, event: Mapping[str, Any]
    ) -> bool:
        """A response, an item or a tool call against the policy: cancel, delete, or hang up."""
        policy, _ = self._policy(call)
        event_type = event.get("type")
        if event_type == "response.created":
            response = event.get("response")
            if not isinstance(response, Mapping):
                return False
            fields = response_breaches(policy, call.record.fixed, response)
            tag = call.record.tag
            if tag is not None and not call.marks.take(
                tag, call.record.call_id, response, self._clock()
            ):
                # Not started by the supervisor: its own instructions and tools are unseen.
                fields = ["metadata", *fields]
            if fields:
                return await self._cancel(call, connection, "response", fields, response.get("id"))
            return False
        item = event.get("item")
        if not isinstance(item, Mapping):
            return False
        if event_type == "response.output_item.added":
            field_name = tool_breach(policy, item)
            if field_name is not None:
                facts = {"item_type": item.get("type")}
                response_id = event.get("response_id")
                fields = [field_name]
                return await self._cancel(call, connection, "tool", fields, response_id, facts)
            return False
        item_id = item.get("id")
        acted = isinstance(item_id, str) and item_id in call.acted
        if acted or not foreign_instructions(policy, item, call.own_items):
            return False
        facts = {"item_type": item.get("type"), "role": item.get("role"), "size": size_of(item)}
        if not isinstance(item_id, str):
            return await self._hang_up_for(call, "item", ["role"], facts)
        call.acted.add(item_id)
        delete = {"type": "conversation.item.delete", "item_id": item_id}
        return await self._act(call, connection, "item", ["role"], delete, facts)

    async def _cancel(
        self,
        call: Watched,
        connection: SidebandConnection,
        scope: Scope,
        fields: list[str],
        response_id: object,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        """Cancel a response for `fields` (once per response), or hang up."""
        if not isinstance(response_id, str):
            return await self._hang_up_for(call, scope, fields, facts)
        if response_id in call.acted:
            return False
        call.acted.add(response_id)
        cancel = {"type": "response.cancel", "response_id": response_id}
        return await self._act(
            call, connection, scope, fields, cancel, {**(facts or {}), "response_id": response_id}
        )

    async def _act(
        self,
        call: Watched,
        connection: SidebandConnection,
        scope: Scope,
        fields: list[str],
        action: Mapping[str, Any],
        facts: Mapping[str, Any],
    ) -> bool:
        """Send `action` (a cancel or a delete), counted by the revert-loop guard; or, with
        `CALLS_ON_OVERRIDE=hangup` or a call that keeps breaking the policy, hang up."""
        if self._settings.calls_on_override == "hangup" or self._looping(call):
            return await self._hang_up_for(call, scope, fields, facts)
        done: Action = "cancel" if action["type"] == "response.cancel" else "delete"
        self._audit(call, scope, fields, done, facts)
        await connection.send(action)
        noted(call.record, fields, self._clock(), ACTED[done], scope)
        await self._write(call)
        return False

    async def _hang_up_for(
        self,
        call: Watched,
        scope: Scope,
        fields: list[str],
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        """End the call for an override, audited as a hang-up."""
        self._audit(call, scope, fields, "hangup", facts)
        # Not written first: the hang-up must not wait on the store, and once it is done
        # the record goes. If it fails the call lives on, and the keeper writes this.
        noted(call.record, fields, self._clock(), "hung_up", scope)
        call.changed = True
        return await self._hang_up(call, "override")

    def _audit(
        self,
        call: Watched,
        scope: Scope,
        fields: list[str],
        action: Action,
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        """The audit line and metric of one override: names, ids and sizes, never content."""
        record = call.record
        metrics.CALL_OVERRIDES.labels(scope, action).inc()
        log.warning(
            "call_policy_override",
            call_id=record.call_id,
            kind=record.kind,
            identity=record.caller,
            scope=scope,
            fields=fields,
            action=action,
            **(facts or {}),
        )

    def _looping(self, call: Watched) -> bool:
        """More than `MAX_REVERTS_PER_MINUTE` reverts: the session will not hold; stop trying."""
        now = self._clock()
        call.reverts = [at for at in call.reverts if now - at < 60_000]
        call.reverts.append(now)
        if len(call.reverts) <= MAX_REVERTS_PER_MINUTE:
            return False
        log.warning("call_override_loop", call_id=call.record.call_id, reverts=len(call.reverts))
        return True
