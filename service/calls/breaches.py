"""What in a call's server events breaks the policy, beyond what it fixed.

`service.calls.fixed` keeps the fields the policy fixed at creation. The
rest of the policy holds for the whole call too:

- `session_breaches`: a `session.updated` is evaluated by the policy's own
  rules (`service.policy.evaluate`, the caller's profile, as at creation)
  against the session as OpenAI reports it (Realtime's GA shape, read by the
  contract's `RealtimeSession`; of GPT-Live's, what can change after start,
  read by `LiveSession`). Each value the rules would refuse or clamp is a
  breach, with the value to restore: under `POLICY_ON_VIOLATION=reject` the
  value the call was created with (or, if it had none, the policy's own
  choice); under `clamp` the clamped value.
- `response_breaches`: a `response.created`'s voice (allowed, and the
  policy's when it fixed one), output modalities and `max_output_tokens`.
- `foreign_instructions`: under `POLICY_INSTRUCTIONS_MODE=server`, a system
  or developer message the service did not create.
- `tool_breach`: an output item calling a function the policy does not offer
  (unless `POLICY_TOOLS_MODE=client`), or an MCP server that is not in
  `POLICY_MCP_SERVERS_FILE` (always: MCP servers only ever come from there).

Pure functions; only field names leave them, never a value of the event.
None recurses into an event's values deeper than `MAX_DEPTH`: a session is
read from a copy that leaves out (as unread) what nests deeper.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from service.calls.fixed import MAX_DEPTH, TooDeep, deeper_than, overridden, value_at
from service.contract import CallKind, LiveSession, RealtimeSession, param_of
from service.policy import AnySession, Policy, evaluate

SCHEMA_RETRIES = 3
"""Rounds of leaving out what the contract cannot read (newer than it) before giving up."""
WHOLE = (
    "audio.input.format",
    "audio.input.noise_reduction",
    "audio.input.transcription",
    "audio.input.turn_detection",
    "audio.output.format",
    "reasoning",
)
"""Objects a `session.update` sets whole: a rule on a field inside one (a transcription's
language, turn detection's idle timeout) restores the whole object, never a fragment."""
LIVE_CHANGEABLE = frozenset({"delegation", "triggers"})
"""What a GPT-Live `session.update` can change; the model, voice, instructions and the
rest are fixed at start (`service.contract.live.LiveSession`)."""
INSTRUCTION_ROLES = frozenset({"system", "developer"})
MCP_ITEMS = frozenset({"mcp_call", "mcp_list_tools", "mcp_approval_request"})


@dataclass(frozen=True, slots=True)
class Breach:
    """A rule the session breaks: the field as the rule names it, and what to restore."""

    field: str
    """The GA path the rule names (`audio.input.transcription.model`)."""
    path: str
    """Where the restored value goes (`audio.input.transcription`: the rule clamps the
    whole object)."""
    value: Any
    """The value to restore at `path` (None: off, or left to OpenAI's default)."""


CUT_KEYS = 3
"""A value nested too deep is cut with its ancestor at most this many object keys down
(`audio.input.noise_reduction`): what sits beside it (`audio.input.transcription`) is
still judged, and no skeleton deeper than `MAX_DEPTH` is left to read."""


def _copy(value: Any, depth: int) -> Any:
    """A copy of a JSON value (objects are dicts: orjson's); `TooDeep` past `MAX_DEPTH`
    (the recursion stops there)."""
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        raise TooDeep
    if isinstance(value, dict):
        return {key: _copy(child, depth + 1) for key, child in value.items()}
    if isinstance(value, list):
        return [_copy(child, depth + 1) for child in value]
    return value


def _kept(value: Any, depth: int, keys: tuple[str, ...], cut: list[str]) -> Any:
    """A copy of `value` (at `keys`) without each field, `CUT_KEYS` keys down at most, that
    holds something nested deeper than `MAX_DEPTH`; their names go to `cut`."""
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        raise TooDeep
    if isinstance(value, list):
        return [_kept(child, depth + 1, keys, cut) for child in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, child in value.items():
        inner = (*keys, str(key))
        try:
            if len(inner) < CUT_KEYS:
                kept[key] = _kept(child, depth + 1, inner, cut)
            else:
                kept[key] = _copy(child, depth + 1)
        except TooDeep:
            cut.append(".".join(inner))
    return kept


def _bounded(session: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `session` without what nests deeper than `MAX_DEPTH` (`_kept`), and the
    fields left out."""
    cut: list[str] = []
    data: dict[str, Any] = _kept(dict(session), 1, (), cut)
    return data, list(dict.fromkeys(cut))


def _without(session: Mapping[str, Any], paths: list[str]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `session` without `paths` (the fixed fields, which `overridden` checks),
    nor what nests too deep (`_bounded`: those fields are returned, unread)."""
    data, cut = _bounded(session)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return data, [path for path in cut if not _under(path, dict.fromkeys(paths))]


def _drop(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Remove the field at a validation error's location (union tags in it skipped)."""
    node: Any = data
    parent: Any = None
    key: int | str | None = None
    for part in loc:
        inside = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if inside:
            parent, key, node = node, part, node[part]
    if isinstance(parent, dict) and key is not None:
        del parent[key]
        return True
    return False


def readable(
    kind: CallKind, session: Mapping[str, Any], fixed: Mapping[str, Any]
) -> tuple[AnySession | None, list[str]]:
    """The echoed session as the policy reads it, without the fixed fields; and the fields
    left unread.

    OpenAI's echo may carry fields, or values, the contract does not know yet
    (newer than it): no rule could judge them, so they are left out and the
    rest is judged. None only if even that fails. Of a GPT-Live session only
    what a `session.update` can change is read (`LIVE_CHANGEABLE`): the rest
    was decided at start and cannot change.
    """
    data, unread = _without(session, [path for path in fixed if path != "type"])
    model: type[RealtimeSession | LiveSession] = RealtimeSession
    if kind == "live":
        data = {key: value for key, value in data.items() if key in LIVE_CHANGEABLE}
        unread = [path for path in unread if path.split(".")[0] in LIVE_CHANGEABLE]
        model = LiveSession
    else:
        data["type"] = "realtime"
    for _ in range(SCHEMA_RETRIES):
        try:
            return model.model_validate(data), list(dict.fromkeys(unread))
        except ValidationError as invalid:
            locs = [error["loc"] for error in invalid.errors()]
            unread += [param_of(loc) or "session" for loc in locs]
            if not all([_drop(data, loc) for loc in locs]):
                break
    return None, list(dict.fromkeys(unread))


def _under(path: str, paths: Mapping[str, Any]) -> bool:
    return any(path == fixed or path.startswith(f"{fixed}.") for fixed in paths)


def _whole(path: str) -> str:
    """The object `path` is restored with (itself, or the `WHOLE` object it is inside)."""
    return next((whole for whole in WHOLE if path.startswith(f"{whole}.")), path)


def _has(session: Mapping[str, Any], path: str) -> bool:
    *parents, last = path.split(".")
    node: Any = session
    for part in parents:
        node = node.get(part) if isinstance(node, Mapping) else None
    return isinstance(node, Mapping) and last in node


def session_breaches(
    rules: Policy,
    on_violation: str,
    request: AnySession,
    fixed: Mapping[str, Any],
    created: Mapping[str, Any],
    caller_tag: str,
) -> list[Breach]:
    """The rules `request` (`readable`'s echo) breaks, and what to restore for each.

    `rules` is the caller's policy with `on_violation=clamp` (so every breach is
    reported with its clamped value, never raised); `on_violation` the policy's
    own setting, which says whether a refused value goes back to `created`.
    """
    outcome = evaluate(rules, request, caller_tag=caller_tag)
    breaches: list[Breach] = []
    for decision in outcome.decisions:
        path = _whole(decision.path or decision.param)
        if decision.action != "clamped" or _under(path, fixed):
            continue
        value = value_at(outcome.session, path)
        if on_violation == "reject" and _has(created, path):
            value = value_at(created, path)
        breaches.append(Breach(decision.param, path, copy.deepcopy(value)))
    return breaches


def response_breaches(
    policy: Policy, fixed: Mapping[str, Any], response: Mapping[str, Any]
) -> list[str]:
    """The fields of a `response.created`'s response that the policy does not allow."""
    fields: list[str] = []
    voice = value_at(response, "audio.output.voice")
    if voice is not None:
        name = voice.get("id") if isinstance(voice, Mapping) else voice
        pinned = {path: fixed[path] for path in ("audio.output.voice",) if path in fixed}
        if name not in policy.allowed_voices or overridden(pinned, response):
            fields.append("audio.output.voice")
    modalities = response.get("output_modalities")
    if isinstance(modalities, list) and any(
        modality not in policy.allowed_output_modalities for modality in modalities
    ):
        fields.append("output_modalities")
    cap, tokens = policy.max_output_tokens, response.get("max_output_tokens")
    if cap != "inf" and tokens is not None and (not isinstance(tokens, int) or tokens > cap):
        fields.append("max_output_tokens")
    return fields


def foreign_instructions(policy: Policy, item: Mapping[str, Any], own: set[str]) -> bool:
    """Whether `item` is a system or developer message while the server sets the instructions,
    and not one the service created (`own`: their ids)."""
    role, item_id = item.get("role"), item.get("id")
    return (
        policy.instructions_mode == "server"
        and item.get("type") == "message"
        and isinstance(role, str)  # a set lookup of an object or list would raise
        and role in INSTRUCTION_ROLES
        and not (isinstance(item_id, str) and item_id in own)
    )


def size_of(item: Mapping[str, Any]) -> int | None:
    """An item's content size in bytes of JSON: what a log may say of it (None: nested
    deeper than `MAX_DEPTH`, which orjson would refuse to write)."""
    content = item.get("content")
    if deeper_than(content, MAX_DEPTH):
        return None
    return len(orjson.dumps(content, default=str))


def tool_breach(policy: Policy, item: Mapping[str, Any]) -> str | None:
    """The field by which an output item calls a tool the policy does not offer, if it does."""
    kind = item.get("type")
    if kind == "function_call" and policy.tools_mode != "client":
        return None if item.get("name") in policy.tool_names else "name"
    if kind in MCP_ITEMS:
        labels = {server.label for server in policy.mcp_servers_file}
        label = item.get("server_label")
        return None if isinstance(label, str) and label in labels else "server_label"
    return None
