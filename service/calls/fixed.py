"""What the policy fixed for a call, and whether a session still holds it.

At creation the policy decides the effective session; some of its fields are
the server's to keep for the whole call, whatever the browser later sends on
its data channel:

- Realtime: the model, voice, output modalities and output-token cap when
  set; tracing (always: `off` means it stays null); the server's instructions
  unless `POLICY_INSTRUCTIONS_MODE=client`; the tools unless
  `POLICY_TOOLS_MODE=client`; and every value the policy pinned. A changed
  model cannot be restored (a session's model is fixed at creation), so it
  ends the call.
- GPT-Live: the delegation, unless `POLICY_LIVE_DELEGATION_MODE=client` (the
  model, voice and instructions cannot change after start, and the data
  channel's allow-list is fixed at creation).

`overridden` compares a `session.updated` against them; `restoring` is the
`session.update` that puts exactly those fields back (and those the policy's
other rules restore: `service.calls.breaches`) and leaves the rest (what the
client may set) alone. Pure functions: no I/O, a few µs per event.

**Depth.** OpenAI's JSON may nest up to 1,024 levels (orjson reads that
deep), beyond Python's recursion limit. A fixed field's echo nested deeper than
`MAX_DEPTH` is an override of that field (no policy value is that deep): the
comparison stops there (`TooDeep`), 64 frames deep at most.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from service.contract.calls import CallKind
from service.policy import Decision, Policy

TURN_DETECTION = "audio.input.turn_detection"
CREATE_RESPONSE = f"{TURN_DETECTION}.create_response"
"""Pinned false under `CALLS_RESPONSES=server`. Turn detection is set whole, so it is
restored as the session's own turn detection with `create_response` false; turn
detection off (null) starts no response and holds it too."""
REALTIME_WHEN_SET = ("model", "audio.output.voice", "output_modalities", "max_output_tokens")
EMPTY_LIKE: tuple[Any, ...] = (None, [], {})
UNECHOED = frozenset({"authorization", "headers"})
DIGEST = "credentials_digest"
"""Where a call record's MCP tool holds the digest of its credentials instead of them
(`service.calls.sealed`); not compared either."""
UNCOMPARED = UNECHOED | {DIGEST}
SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}")
MAX_DEPTH = 64
"""How deeply a session's values may nest (objects and lists): far beyond any real
session (a tool's JSON schema nests a dozen levels), far within Python's recursion limit."""


def deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` objects or lists, found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, Mapping) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def value_at(session: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`audio.output.voice`), or None if absent."""
    node: Any = session
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def fixed_fields(
    kind: CallKind, policy: Policy, session: Mapping[str, Any], decisions: Iterable[Decision]
) -> dict[str, Any]:
    """The fields of the effective `session` the server keeps for the whole call."""
    if kind == "live":
        if policy.live.delegation_mode == "client":
            return {}
        return {"delegation": session.get("delegation")}
    fixed = {path: value_at(session, path) for path in REALTIME_WHEN_SET}
    fixed = {path: value for path, value in fixed.items() if value is not None}
    fixed["tracing"] = session.get("tracing")
    if policy.instructions_mode != "client" and policy.instructions is not None:
        fixed["instructions"] = session.get("instructions")
    if policy.tools_mode != "client":
        fixed["tools"] = session.get("tools") or []
    for decision in decisions:
        if decision.action == "pinned":
            fixed[decision.param] = value_at(session, decision.param)
    if CREATE_RESPONSE in fixed:
        fixed[CREATE_RESPONSE] = False  # also with turn detection off: it holds when turned on
    return fixed


class TooDeep(ValueError):
    """A value nests deeper than `MAX_DEPTH`: what walks it stops there, never at Python's
    recursion limit."""


def _normal(value: Any, depth: int = 1) -> Any:
    """Compared without nulls in objects, with null, [] and {} alike, and without the
    credentials of MCP tools (OpenAI does not echo them back) or their digest; `TooDeep`
    past `MAX_DEPTH` (the recursion stops there)."""
    if value in EMPTY_LIKE:
        return None
    if isinstance(value, Mapping):
        if depth > MAX_DEPTH:
            raise TooDeep
        return {
            k: _normal(v, depth + 1)
            for k, v in value.items()
            if v is not None and k not in UNCOMPARED
        }
    if isinstance(value, list):
        if depth > MAX_DEPTH:
            raise TooDeep
        return [_normal(item, depth + 1) for item in value]
    return value


def _same(path: str, echoed: Any, expected: Any) -> bool:
    if path == "model" and isinstance(echoed, str) and isinstance(expected, str):
        # OpenAI may echo the dated snapshot an alias resolved to.
        return echoed == expected or SNAPSHOT.fullmatch(echoed.removeprefix(expected)) is not None
    try:
        return bool(_normal(echoed) == _normal(expected))
    except TooDeep:
        return False  # no policy value nests that deep


def _holds(path: str, session: Mapping[str, Any], expected: Any) -> bool:
    if path == CREATE_RESPONSE:
        detection = value_at(session, TURN_DETECTION)
        # Absent from the echo, `create_response` is OpenAI's default: true.
        return not isinstance(detection, Mapping) or detection.get("create_response", True) is False
    return _same(path, value_at(session, path), expected)


def overridden(fixed: Mapping[str, Any], session: Mapping[str, Any]) -> list[str]:
    """The fixed paths whose value in `session` (a `session.updated`) is not the policy's."""
    return [path for path, expected in fixed.items() if not _holds(path, session, expected)]


def revertible(paths: Iterable[str]) -> bool:
    """Whether a `session.update` can put these back (a session's model cannot change)."""
    return "model" not in paths


def restoring(
    kind: CallKind,
    values: Mapping[str, Any],
    paths: Iterable[str],
    detection: Any = None,
) -> dict[str, Any]:
    """The `session.update` client event that puts `paths` back to `values` (by path: what
    the policy fixed, and what its rules restore). A path within another one is left to it.

    `detection` is the session's turn detection as it stands (the echo's, or the one
    the call was created with): a pinned `create_response` is restored inside it, and
    any turn detection this event sets keeps it pinned.
    """
    session: dict[str, Any] = {"type": "realtime"} if kind == "realtime" else {}
    wanted = list(dict.fromkeys(paths))
    if CREATE_RESPONSE in wanted:
        wanted.remove(CREATE_RESPONSE)
        if TURN_DETECTION not in wanted and isinstance(detection, Mapping):
            values = {**values, TURN_DETECTION: detection}
            wanted.append(TURN_DETECTION)
    for path in wanted:
        if any(path.startswith(f"{other}.") for other in wanted):
            continue
        *parents, last = path.split(".")
        node = session
        for part in parents:
            node = node.setdefault(part, {})
        value = copy.deepcopy(values[path])
        node[last] = [] if path == "tools" and value is None else value
    restored = value_at(session, TURN_DETECTION)
    if CREATE_RESPONSE in values and isinstance(restored, dict):
        restored["create_response"] = False
    return {"type": "session.update", "session": session}
