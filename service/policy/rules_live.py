"""Apply the policy to a requested GPT-Live session: the effective session and why.

The same merge as for Realtime (`service.policy.rules`): server defaults,
what the client may set, server pins; every violation collected into one 403
(reject) or replaced and reported (clamp). GPT-Live has its own rules for
what Realtime does not have:

- `delegation` (the backend prompt and tools) is the server's unless
  `POLICY_LIVE_DELEGATION_MODE=client`;
- `client.data_channel.allowed_client_events` is always set: a caller may
  narrow the list, never widen it;
- startup `input` may not carry developer messages unless the caller may set
  instructions (`POLICY_LIVE_INSTRUCTIONS_MODE=client`): a developer message
  is instructions by another name;
- `store` follows `POLICY_LIVE_STORE`; `safety_identifier` is always the
  caller's identity (hashed with `AUTH_HASH_IDENTITIES`), so OpenAI's abuse
  signals name the real end user and a browser cannot borrow another's.
"""

from __future__ import annotations

from collections.abc import Callable

from service.contract.live import LiveSession
from service.policy.merge import Merge, allowed_text
from service.policy.model import Policy
from service.policy.rules import Outcome, choose_model, conclude, merge_instructions
from service.policy.rules_audio import choose_voice


def _model(m: Merge[LiveSession]) -> None:
    live = m.policy.live
    if not live.allowed_models:
        message = "GPT-Live sessions are not allowed (ops enable them: POLICY_LIVE_ALLOWED_MODELS)"
        m.violations.append(("model", message))
        return
    choose_model(m, m.request.model, live.allowed_models, live.default_model)


def _voice(m: Merge[LiveSession]) -> None:
    output = m.request.audio.output if m.request.audio else None
    choose_voice(m, output.voice if output else None)


def _instructions(m: Merge[LiveSession]) -> None:
    live, text = m.policy.live, m.request.instructions
    merge_instructions(m, text or None, live.instructions, live.instructions_mode)


def _input(m: Merge[LiveSession]) -> None:
    items = m.request.input
    if not items or m.policy.live.instructions_mode == "client":
        return
    kept = [item for item in items if item.role != "developer"]
    if len(kept) != len(items):
        m.violate(
            "input",
            "developer messages are instructions, which the server sets "
            "(POLICY_LIVE_INSTRUCTIONS_MODE)",
            kept,
        )


def _delegation(m: Merge[LiveSession]) -> None:
    live, asked = m.policy.live, m.request.delegation
    server = live.delegation()
    if live.delegation_mode == "client":
        if asked is None and "delegation" not in m.request.model_fields_set and server:
            m.default("delegation", server, "server delegation")
        return
    if asked is not None:
        m.violate(
            "delegation",
            "delegation is set by the server (POLICY_LIVE_DELEGATION_FILE); send none",
            server,
        )
    elif server is not None:
        m.pin("delegation", server, "server delegation")


def _client_events(m: Merge[LiveSession]) -> None:
    allowed = m.policy.live.client_events
    path = "client.data_channel.allowed_client_events"
    channel = m.request.client.data_channel if m.request.client else None
    asked = channel.allowed_client_events if channel else None
    if allowed == "all":
        if asked is None:
            m.pin(path, "all", "the browser may send every client event")
        return
    if asked is None:
        m.pin(path, list(allowed), "client events the browser may send")
        return
    wider = ["all"] if asked == "all" else sorted(set(asked) - set(allowed))
    if wider:
        m.violate(
            path,
            f"the browser may not send {', '.join(wider)} (allowed: {allowed_text(allowed)})",
            list(allowed),
        )


def _store(m: Merge[LiveSession]) -> None:
    mode, asked = m.policy.live.store, m.request.store
    if mode == "on" and asked is not True:
        m.pin("store", True, "sessions are stored by the server")
    elif mode == "off" and asked:
        m.violate("store", "storing sessions is disabled by the server (POLICY_LIVE_STORE)", None)


RULES: tuple[Callable[[Merge[LiveSession]], None], ...] = (
    _model,
    _voice,
    _instructions,
    _input,
    _delegation,
    _client_events,
    _store,
)


def evaluate_live(
    policy: Policy, request: LiveSession, ttl_seconds: int | None, caller_tag: str
) -> Outcome:
    """Merge a Live session into `policy`: the effective session, or a `PolicyViolation`.

    A Live session has no lifetime of its own to choose (`ttl_seconds` is unused):
    it lasts until hang-up.
    """
    m = Merge(policy, request)
    for rule in RULES:
        rule(m)
    m.pin("safety_identifier", caller_tag, "the caller's identity")
    return conclude(m, None)
