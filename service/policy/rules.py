"""Apply the policy to a requested GA session: the effective session and why.

The policy reasons about OpenAI's GA realtime session (`RealtimeSession`);
the beta endpoint translates its Session into one first. Merge order is server
defaults, then what the client may set, then server pins. Every rule either
accepts the client's value, fills a default, pins the server's value, or finds
a violation. Under `POLICY_ON_VIOLATION=reject` all violations are collected
and raised together as one 403, so a caller fixes everything in one round
trip; under `clamp` each is replaced by the nearest allowed value and
reported in `decisions`, so nothing changes silently.

Rules by concern: audio in `rules_audio`, tools in `rules_tools`, GA-only
features (reasoning, truncation) in `rules_features`. Pure functions
on frozen pydantic models: no I/O, cheap enough for the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.contract.effective import SessionJSON
from service.contract.ga import READ_ONLY, RealtimeSession
from service.contract.ga_audio import AudioInput, AudioOutput
from service.core.errors import PolicyViolation
from service.policy import rules_audio, rules_features, rules_tools
from service.policy.merge import Decision, Merge, effective, session_type
from service.policy.model import Policy


@dataclass(frozen=True, slots=True)
class Outcome:
    """The effective GA session (JSON, as sent upstream), its lifetime, and the decisions."""

    session: SessionJSON
    ttl_seconds: int
    decisions: tuple[Decision, ...]


def _model(m: Merge[RealtimeSession]) -> None:
    session_type(m, "realtime")
    choose_model(m, m.request.model, m.policy.allowed_models, m.policy.default_model)


def choose_model(m: Merge[Any], asked: str | None, allowed: tuple[str, ...], default: str) -> None:
    """The model: the server's default, or one from the allowed list."""
    if asked is None:
        m.default("model", default, "server default model")
    else:
        m.allowed("model", "model", asked, allowed, default)


def _instructions(m: Merge[RealtimeSession]) -> None:
    p = m.policy
    merge_instructions(m, m.request.instructions, p.instructions, p.instructions_mode)


def merge_instructions(m: Merge[Any], text: str | None, server: str | None, mode: str) -> None:
    """Instructions under a mode: `server` pins the server's, `append` adds the caller's
    after them, `client` lets the caller's replace them; POLICY_MAX_INSTRUCTIONS_CHARS caps."""
    limit = m.policy.max_instructions_chars
    if mode == "server":
        if text is not None:
            m.violate("instructions", "instructions are set by the server; send none", server)
        elif server is not None:
            m.pin("instructions", server, "server instructions")
        return
    if text is not None and len(text) > limit:
        m.violate("instructions", f"instructions exceed {limit} characters", text[:limit])
        text = text[:limit]
    if text is None:
        if server is not None:
            m.default("instructions", server, "server instructions")
    elif mode == "append" and server is not None:
        m.pin("instructions", f"{server}\n\n{text}", "client instructions appended to the server's")


def _tracing(m: Merge[RealtimeSession]) -> None:
    mode, requested = m.policy.tracing, m.request.tracing
    if mode == "off" and requested is not None:
        m.violate("tracing", "tracing is disabled by the server", None)
    elif mode == "auto" and requested not in (None, "auto"):
        m.violate("tracing", "tracing is forced to 'auto' by the server", "auto")
    elif mode == "auto" and requested is None:
        m.pin("tracing", "auto", "tracing forced on by the server")


def _sides(r: RealtimeSession) -> tuple[AudioInput | None, AudioOutput | None]:
    return (r.audio.input, r.audio.output) if r.audio else (None, None)


def _voice(m: Merge[RealtimeSession]) -> None:
    rules_audio.voice(m, _sides(m.request)[1])


def _limits(m: Merge[RealtimeSession]) -> None:
    p, r = m.policy, m.request
    cap, asked = p.max_output_tokens, r.max_output_tokens
    if cap != "inf":
        if asked is None:
            m.default("max_output_tokens", cap, "server cap on output tokens")
        elif asked == "inf" or asked > cap:
            m.violate("max_output_tokens", f"output tokens are capped at {cap}", cap)
    rules_audio.speed(m, _sides(r)[1])


def _modalities(m: Merge[RealtimeSession]) -> None:
    p, r = m.policy, m.request
    allowed = p.allowed_output_modalities
    if r.output_modalities is not None:
        wanted = r.output_modalities[0]
        if wanted not in allowed:
            m.violate("output_modalities", f"{wanted} output is not allowed", [allowed[0]])
    elif "audio" not in allowed:
        m.pin("output_modalities", ["text"], "audio output is not allowed")


def _audio(m: Merge[RealtimeSession]) -> None:
    audio_in, output = _sides(m.request)
    rules_audio.formats(m, audio_in, output)
    rules_audio.noise_reduction(m, audio_in)
    _modalities(m)
    rules_audio.transcription(m, audio_in)
    rules_audio.languages(m, audio_in)
    rules_audio.turn_detection(m, audio_in)


RULES: tuple[Callable[[Merge[RealtimeSession]], None], ...] = (
    _model,
    _voice,
    _instructions,
    _tracing,
    rules_tools.tools,
    _limits,
    _audio,
    rules_features.reasoning,
    rules_features.truncation,
)


def _tag_traces(m: Merge[RealtimeSession], caller_tag: str) -> None:
    """With tracing on, put the caller into the trace metadata so traces join to callers."""
    if "tracing" in m.updates:
        tracing = m.updates["tracing"]
    else:
        tracing = m.request.model_dump(mode="json", include={"tracing"}).get("tracing")
    if tracing is None:
        return
    config: dict[str, Any] = {} if tracing == "auto" else {**tracing}
    config["metadata"] = {**(config.get("metadata") or {}), "caller": caller_tag}
    config = {key: value for key, value in config.items() if value is not None}
    m.pin("tracing", config, "caller added to traces")


def conclude(m: Merge[Any], ttl_seconds: int | None) -> Outcome:
    """The TTL, then one 403 for every violation (reject) or the effective session."""
    policy = m.policy
    ttl = policy.token_ttl_seconds
    if ttl_seconds is not None:
        ttl = ttl_seconds
        if ttl_seconds > policy.max_token_ttl_seconds:
            ttl = policy.max_token_ttl_seconds
            message = f"token lifetime is capped at {ttl}s"
            m.violations.append(("expires_after.seconds", message))
            m.decisions.append(Decision("expires_after.seconds", "clamped", message, ttl))
    if m.violations and policy.on_violation == "reject":
        raise PolicyViolation(m.violations)
    return Outcome(effective(m.request, m.updates, READ_ONLY), ttl, tuple(m.decisions))


def evaluate_realtime(
    policy: Policy, request: RealtimeSession, ttl_seconds: int | None, caller_tag: str
) -> Outcome:
    """Merge a realtime session into `policy`: the effective session, or a `PolicyViolation`."""
    m = Merge(policy, request)
    for rule in RULES:
        rule(m)
    _tag_traces(m, caller_tag)
    return conclude(m, ttl_seconds)
