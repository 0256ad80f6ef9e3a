"""Apply the policy to a requested GPT-Live session: the effective session and why.

The same merge as for Realtime (`service.policy.rules`): server defaults,
what the client may set, server pins; every violation collected into one 403
(reject) or replaced and reported (clamp). GPT-Live has its own rules for
what Realtime does not have:

- `delegation` (the backend prompt and tools) is the server's unless
  `POLICY_LIVE_DELEGATION_MODE=client`;
- `client.data_channel.allowed_client_events` is always set: a caller may
  narrow the list, never widen it;
- startup `input` messages may have only the roles in
  `POLICY_LIVE_INPUT_ROLES` (`user` by default): a developer message is
  instructions by another name, and an assistant message is a forged model
  turn the model takes as its own precedent;
- `triggers` (Decisions questions run on every transcript delta, billed to
  the server's key) follow `POLICY_LIVE_TRIGGERS`: none, the server's, or a
  caller's within a question count and a size;
- `client.data_channel.allowed_server_events` is left as the caller sent it
  (it can only narrow what the browser receives), even when the server sets
  the instructions: selectors name whole event types, and the instructions
  ride in `session.started` (and `session.updated`), the browser's signal
  that the session is live. Withholding those would break the browser, and
  keeping every other event would need each nested Responses event type
  spelled out. So, as Realtime's `session.created`, the browser sees them;
- `store` follows `POLICY_LIVE_STORE`; `safety_identifier` is always the
  caller's identity (hashed with `AUTH_HASH_IDENTITIES`), so OpenAI's abuse
  signals name the real end user and a browser cannot borrow another's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.contract.live import LiveSession
from service.policy.live import question_chars, trigger_questions
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
    items, roles = m.request.input, m.policy.live.input_roles
    if not items:
        return
    kept = [item for item in items if item.role in roles]
    if len(kept) != len(items):
        refused = sorted({item.role for item in items} - set(roles))
        m.violate(
            "input",
            f"input messages may not have the role {', '.join(refused)} "
            f"(allowed: {allowed_text(roles)}; POLICY_LIVE_INPUT_ROLES)",
            kept,
        )


def _triggers(m: Merge[LiveSession]) -> None:
    live, asked = m.policy.live, m.request.triggers
    server = live.server_triggers() if live.triggers != "off" else None
    if live.triggers == "client":
        if asked is None:
            if server:
                m.default("triggers", server, "server triggers")
            return
        _capped_triggers(m, [t.model_dump(mode="json", exclude_none=True) for t in asked])
        return
    if live.triggers == "server":
        if asked is not None:
            m.violate(
                "triggers",
                "triggers are set by the server (POLICY_LIVE_TRIGGERS); send none",
                server,
            )
        else:
            m.pin("triggers", server, "server triggers")
    elif asked:
        m.violate("triggers", "triggers are disabled by the server (POLICY_LIVE_TRIGGERS)", None)


def _capped_triggers(m: Merge[LiveSession], triggers: list[dict[str, Any]]) -> None:
    """A caller's triggers within POLICY_LIVE_MAX_TRIGGER_QUESTIONS and _CHARS; clamp keeps
    the questions, in order, that fit both."""
    live = m.policy.live
    count = trigger_questions(triggers)
    size = sum(question_chars(q) for t in triggers for q in t["decisions"]["questions"])
    problems = []
    if count > live.max_trigger_questions:
        problems.append(f"{count} trigger questions exceed {live.max_trigger_questions}")
    if size > live.max_trigger_chars:
        problems.append(f"trigger questions of {size} characters exceed {live.max_trigger_chars}")
    if not problems:
        return
    kept, budget, room = [], live.max_trigger_chars, live.max_trigger_questions
    for trigger in triggers:
        questions = []
        for question in trigger["decisions"]["questions"]:
            if room and question_chars(question) <= budget:
                questions.append(question)
                budget, room = budget - question_chars(question), room - 1
        if questions:
            kept.append({**trigger, "decisions": {**trigger["decisions"], "questions": questions}})
    m.violate("triggers", f"{'; '.join(problems)} (POLICY_LIVE_MAX_TRIGGER_*)", kept or None)


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
    _triggers,
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
