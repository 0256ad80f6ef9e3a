"""Apply the policy to a requested Session: the effective session and why.

Merge order is server defaults, then what the client may set, then server
pins. Every rule either accepts the client's value, fills a default, pins the
server's value, or finds a violation. Under `POLICY_ON_VIOLATION=reject` all
violations are collected and raised together as one 403, so a caller fixes
everything in one round trip; under `clamp` each is replaced by the nearest
allowed value and reported in `decisions`, so nothing changes silently.

Pure functions on frozen pydantic models: no I/O, cheap enough for the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from service.contract.beta import (
    InputAudioTranscription,
    Session,
    Tool,
    TracingConfiguration,
    TurnDetection,
)
from service.errors import PolicyViolation
from service.policy.model import Policy

Action = Literal["default", "pinned", "clamped"]
TOOL_CHOICE_OPTIONS = frozenset({"auto", "none", "required"})


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the policy did to the request, reported to the caller."""

    param: str
    action: Action
    reason: str
    applied: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in responses and the audit log."""
        return {
            "param": self.param,
            "action": self.action,
            "reason": self.reason,
            "applied": self.applied,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """The effective session, the secret's lifetime, and the decisions behind them."""

    session: Session
    ttl_seconds: int
    decisions: tuple[Decision, ...]


@dataclass(slots=True)
class _Merge:
    """Working state of one evaluation: updates to apply and what was decided."""

    policy: Policy
    request: Session
    updates: dict[str, Any] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)

    def default(self, param: str, value: Any, reason: str) -> None:
        self.updates[param] = value
        self.decisions.append(Decision(param, "default", reason, _shown(value)))

    def pin(self, param: str, value: Any, reason: str) -> None:
        self.updates[param] = value
        self.decisions.append(Decision(param, "pinned", reason, _shown(value)))

    def violate(self, param: str, message: str, clamp_to: Any, field_name: str = "") -> None:
        """Record a violation, and what `clamp` mode would use instead."""
        self.violations.append((param, message))
        self.updates[field_name or param] = clamp_to
        self.decisions.append(Decision(param, "clamped", message, _shown(clamp_to)))


def _shown(value: Any) -> Any:
    """A JSON-friendly view of an applied value (models as dicts)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return value


def _allowed(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "none"


def _choose(
    m: _Merge, param: str, asked: str | None, allowed: tuple[str, ...], default: str
) -> None:
    """A named choice (model, voice): the server's default, or one from the allowed list."""
    if asked is None:
        m.default(param, default, f"server default {param}")
    elif asked not in allowed:
        m.violate(
            param, f"{param} '{asked}' is not allowed (allowed: {_allowed(allowed)})", default
        )


def _model_and_voice(m: _Merge) -> None:
    p, r = m.policy, m.request
    _choose(m, "model", r.model, p.allowed_models, p.default_model)
    _choose(m, "voice", r.voice, p.allowed_voices, p.default_voice)


def _instructions(m: _Merge) -> None:
    p, text = m.policy, m.request.instructions
    server = p.instructions
    if p.instructions_mode == "server":
        if text is not None:
            m.violate("instructions", "instructions are set by the server; send none", server)
        elif server is not None:
            m.pin("instructions", server, "server instructions")
        return
    if text is not None and len(text) > p.max_instructions_chars:
        m.violate(
            "instructions",
            f"instructions exceed {p.max_instructions_chars} characters",
            text[: p.max_instructions_chars],
        )
        text = text[: p.max_instructions_chars]
    if text is None:
        if server is not None:
            m.default("instructions", server, "server instructions")
    elif p.instructions_mode == "append" and server is not None:
        m.pin("instructions", f"{server}\n\n{text}", "client instructions appended to the server's")


def _tracing(m: _Merge) -> None:
    mode, r = m.policy.tracing, m.request
    requested = r.tracing if "tracing" in r.model_fields_set else "absent"
    if mode == "off" and requested not in ("absent", None):
        m.violate("tracing", "tracing is disabled by the server", None)
    elif mode == "auto" and requested not in ("absent", "auto"):
        m.violate("tracing", "tracing is forced to 'auto' by the server", "auto")
    elif mode == "auto" and requested == "absent":
        m.pin("tracing", "auto", "tracing forced on by the server")


def _tools(m: _Merge) -> None:
    p, requested = m.policy, m.request.tools
    effective: list[Tool] | None = requested
    if p.tools_mode == "server":
        if requested is not None:
            m.violate("tools", "tools are set by the server; send none", list(p.tools) or None)
        elif p.tools:
            m.pin("tools", list(p.tools), "server tools")
        effective = list(p.tools)
    elif requested is None:
        if p.tools:
            m.default("tools", list(p.tools), "server tools")
        effective = list(p.tools)
    elif p.tools_mode == "subset":
        by_name = {tool.name: tool for tool in p.tools}
        unknown = [t.name or "" for t in requested if t.name not in by_name]
        effective = list({t.name: by_name[t.name] for t in requested if t.name in by_name}.values())
        if unknown:
            m.violate(
                "tools",
                f"tools not offered by the server: {', '.join(unknown)} (offered: "
                f"{_allowed(p.tool_names)})",
                effective,
            )
        else:
            m.pin("tools", effective, "server definitions of the chosen tools")
    choice = m.request.tool_choice
    if choice is not None and choice not in TOOL_CHOICE_OPTIONS:
        names = {tool.name for tool in effective or ()}
        if choice not in names:
            m.violate(
                "tool_choice",
                f"tool_choice names '{choice}', which is not among the session's tools",
                None,
            )


def _limits(m: _Merge) -> None:
    p, r = m.policy, m.request
    cap, asked = p.max_output_tokens, r.max_response_output_tokens
    if cap != "inf":
        if asked is None:
            m.default("max_response_output_tokens", cap, "server cap on output tokens")
        elif asked == "inf" or asked > cap:
            m.violate(
                "max_response_output_tokens", f"max_response_output_tokens is capped at {cap}", cap
            )
    if r.speed is not None and not p.speed_min <= r.speed <= p.speed_max:
        m.violate(
            "speed",
            f"speed must be between {p.speed_min} and {p.speed_max}",
            min(max(r.speed, p.speed_min), p.speed_max),
        )


def _audio(m: _Merge) -> None:
    p, r = m.policy, m.request
    formats = p.allowed_audio_formats
    for name in ("input_audio_format", "output_audio_format"):
        asked = getattr(r, name)
        if asked is None and "pcm16" not in formats:
            m.pin(name, formats[0], "the API's default pcm16 is not allowed")
        elif asked is not None and asked not in formats:
            m.violate(
                name, f"{name} '{asked}' is not allowed (allowed: {_allowed(formats)})", formats[0]
            )
    nr = r.input_audio_noise_reduction
    if nr is not None and nr.type not in p.allowed_noise_reduction:
        m.violate(
            "input_audio_noise_reduction.type",
            f"noise reduction '{nr.type}' is not "
            f"allowed (allowed: {_allowed(p.allowed_noise_reduction)})",
            None,
            "input_audio_noise_reduction",
        )
    if r.modalities is not None:
        wanted = "text" if set(r.modalities) == {"text"} else "audio"
        if wanted not in p.allowed_output_modalities:
            other = p.allowed_output_modalities[0]
            m.violate("modalities", f"{wanted} output is not allowed", [other])
    elif "audio" not in p.allowed_output_modalities:
        m.pin("modalities", ["text"], "audio output is not allowed")


def _transcription(m: _Merge) -> None:
    p, t = m.policy, m.request.input_audio_transcription
    if t is None:
        return
    allowed = p.allowed_transcription_models
    param = "input_audio_transcription"
    if not allowed:
        m.violate(param, "input audio transcription is disabled by the server", None)
    elif t.model is None:
        m.default(param, t.model_copy(update={"model": allowed[0]}), "server transcription model")
    elif t.model not in allowed:
        m.violate(
            f"{param}.model",
            f"transcription model '{t.model}' is not allowed (allowed: {_allowed(allowed)})",
            InputAudioTranscription(language=t.language, model=allowed[0], prompt=t.prompt),
            param,
        )


def _turn_detection(m: _Merge) -> None:
    p, r = m.policy, m.request
    allowed = p.allowed_turn_detection
    td = r.turn_detection
    if td is not None:
        kind: str = td.type or "server_vad"
    else:
        kind = "none" if "turn_detection" in r.model_fields_set else "absent"
    fallback = None if allowed[0] == "none" else TurnDetection(type=allowed[0])
    if kind == "absent":
        if "server_vad" not in allowed:
            m.pin("turn_detection", fallback, "the API's default server_vad is not allowed")
    elif kind not in allowed:
        m.violate(
            "turn_detection",
            f"turn detection '{kind}' is not allowed (allowed: {_allowed(allowed)})",
            fallback,
        )


def _tag_traces(m: _Merge, caller_tag: str) -> None:
    """With tracing on, put the caller into the trace metadata so traces join to callers."""
    tracing = m.updates.get("tracing", m.request.tracing)
    if tracing is None:
        return
    config = TracingConfiguration() if tracing == "auto" else tracing
    assert isinstance(config, TracingConfiguration)  # noqa: S101 - the Tracing union
    metadata = {**(config.metadata or {}), "caller": caller_tag}
    m.pin("tracing", config.model_copy(update={"metadata": metadata}), "caller added to traces")


RULES = (
    _model_and_voice,
    _instructions,
    _tracing,
    _tools,
    _limits,
    _audio,
    _transcription,
    _turn_detection,
)


def evaluate(
    policy: Policy,
    request: Session,
    ttl_seconds: int | None,
    name: Callable[[str], str] = str,
    caller_tag: str | None = None,
) -> Outcome:
    """Merge `request` into `policy`: the effective session, or a `PolicyViolation`.

    `name` spells parameters the way the caller's endpoint does (`voice` on the beta
    endpoint, `session.audio.output.voice` on the GA endpoint).
    """
    m = _Merge(policy, request)
    for rule in RULES:
        rule(m)
    if caller_tag is not None:
        _tag_traces(m, caller_tag)
    ttl = policy.token_ttl_seconds
    if ttl_seconds is not None:
        ttl = ttl_seconds
        if ttl_seconds > policy.max_token_ttl_seconds:
            ttl = policy.max_token_ttl_seconds
            m.violations.append(("expires_after.seconds", f"token lifetime is capped at {ttl}s"))
            m.decisions.append(
                Decision(
                    "expires_after.seconds", "clamped", f"token lifetime is capped at {ttl}s", ttl
                )
            )
    if m.violations and policy.on_violation == "reject":
        named = [(name(param), message) for param, message in m.violations]
        raise PolicyViolation(
            "Policy violation: " + "; ".join(f"{p}: {msg}" for p, msg in named),
            param=named[0][0],
            extra={"violations": [{"param": p, "message": msg} for p, msg in named]},
        )
    session = request.model_copy(update=m.updates) if m.updates else request
    return Outcome(session, ttl, tuple(m.decisions))
