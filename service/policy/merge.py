"""The working state of one policy evaluation, shared by the rule modules.

Rules read the typed request and record what they decide as updates keyed by
the field's GA path (`audio.output.voice`), with JSON values. The effective
session is the request's own JSON (only what the caller set) with those
updates applied, then normalised: `null` is left out of the upstream body
wherever OpenAI's schema does not take it, or where it means the default
anyway. The one meaningful null is `audio.input.turn_detection` (turn
detection off), which the GA schema accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import BaseModel

from service.contract.effective import SessionJSON
from service.policy.model import Policy, SessionType

Action = Literal["default", "pinned", "clamped"]
S = TypeVar("S", bound=BaseModel)
KEEP_NULL = frozenset({"audio.input.turn_detection"})
"""Paths where `null` means something upstream (and the GA schema accepts it)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the policy did to the request, reported to the caller."""

    param: str
    action: Action
    reason: str
    applied: Any = None
    path: str = ""
    """Where `applied` went in the session, when not at `param` itself (a clamped
    transcription model replaces the whole `audio.input.transcription`)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in responses and the audit log."""
        return {
            "param": self.param,
            "action": self.action,
            "reason": self.reason,
            "applied": self.applied,
        }


def as_json(value: Any) -> Any:
    """A JSON value for an update: models dumped without their unset or null fields."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


@dataclass(slots=True)
class Merge(Generic[S]):
    """Working state of one evaluation: updates to apply and what was decided."""

    policy: Policy
    request: S
    updates: dict[str, Any] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)

    def default(self, param: str, value: Any, reason: str) -> None:
        """Fill a field the caller left out with the server's value."""
        self.updates[param] = as_json(value)
        self.decisions.append(Decision(param, "default", reason, as_json(value)))

    def pin(self, param: str, value: Any, reason: str) -> None:
        """Set a field to the server's value whatever the caller asked."""
        self.updates[param] = as_json(value)
        self.decisions.append(Decision(param, "pinned", reason, as_json(value)))

    def violate(self, param: str, message: str, clamp_to: Any, field_path: str = "") -> None:
        """Record a violation, and what `clamp` mode would use instead (None: leave out)."""
        self.violations.append((param, message))
        self.updates[field_path or param] = as_json(clamp_to)
        self.decisions.append(
            Decision(param, "clamped", message, as_json(clamp_to), field_path or param)
        )

    def allowed(
        self,
        param: str,
        what: str,
        value: object,
        allowed: Collection[object],
        clamp_to: Any,
        field_path: str = "",
    ) -> bool:
        """Whether `value` is among `allowed`; if not, the violation every list rule words
        alike: "`what` 'value' is not allowed (allowed: a, b)"."""
        if value in allowed:
            return True
        shown = allowed_text(tuple(str(item) for item in allowed))
        self.violate(
            param, f"{what} '{value}' is not allowed (allowed: {shown})", clamp_to, field_path
        )
        return False

    def refuse(self, param: str, message: str) -> None:
        """Record a violation whose clamp is to leave the offending part out."""
        self.violations.append((param, message))
        self.decisions.append(Decision(param, "clamped", message, None))


def allowed_text(values: tuple[str, ...]) -> str:
    """How an allowed list is shown in messages: comma-separated, or `none`."""
    return ", ".join(values) if values else "none"


def session_type(m: Merge[Any], kind: SessionType) -> None:
    """POLICY_SESSION_TYPES: a kind of session ops turned off is refused whole."""
    allowed = m.policy.session_types
    if kind not in allowed:
        m.violations.append(
            (
                "type",
                f"{kind} sessions are not allowed (allowed: {allowed_text(allowed)}; "
                "ops enable them with POLICY_SESSION_TYPES)",
            )
        )


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = body
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def _remove(body: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def _explicit_null(request: BaseModel, path: str) -> bool:
    """Whether the caller sent `null` at `path` (not merely left it out)."""
    node: Any = request
    *parents, last = path.split(".")
    for part in parents:
        node = getattr(node, part, None)
        if not isinstance(node, BaseModel):
            return False
    return last in node.model_fields_set and getattr(node, last, None) is None


def effective(
    request: BaseModel, updates: Mapping[str, Any], exclude: frozenset[str]
) -> SessionJSON:
    """The request's JSON with the policy's updates applied, normalised for upstream.

    pydantic leaves out every null a model field holds (free-form JSON such as
    tool parameters keeps its own); the one meaningful null is put back.
    """
    body = request.model_dump(
        mode="json", exclude_unset=True, exclude_none=True, exclude=set(exclude)
    )
    for path in KEEP_NULL:
        if _explicit_null(request, path):
            _set(body, path, None)
    for path, value in updates.items():
        if value is None and path not in KEEP_NULL:
            _remove(body, path)
        else:
            _set(body, path, value)
    audio = body.get("audio")
    if isinstance(audio, dict):
        for side in ("input", "output"):
            if audio.get(side) == {}:
                del audio[side]
        if not audio:
            del body["audio"]
    # What the GA models dump, with updates of the same JSON: the shape SessionJSON names.
    return cast("SessionJSON", body)
