"""Policy rules for GA-only session features: prompts, reasoning effort, truncation.

Each is off or narrow by default where it hands the caller something the
operator has not vetted (a dashboard prompt carries its own instructions), and
open where it only tunes the model (reasoning effort, truncation).
"""

from __future__ import annotations

from service.contract.ga import RealtimeSession
from service.policy.merge import Merge, allowed_text


def prompt(m: Merge[RealtimeSession]) -> None:
    """Prompt ids: POLICY_PROMPTS, or POLICY_PROMPT pinned; variables: POLICY_PROMPT_VARIABLES."""
    p, asked = m.policy, m.request.prompt
    if p.prompt is not None:
        if asked is not None and asked.id != p.prompt:
            m.violate("prompt", "the prompt is set by the server (POLICY_PROMPT); send none", None)
            asked = None
        pinned: dict[str, object] = {"id": p.prompt}
        if asked is not None and asked.version is not None:
            pinned["version"] = asked.version
        if asked is not None and asked.variables and p.prompt_variables == "client":
            pinned["variables"] = asked.model_dump(mode="json", exclude_none=True)["variables"]
        m.pin("prompt", pinned, "server prompt")
    elif asked is not None and asked.id not in p.prompts:
        m.violate(
            "prompt.id",
            f"prompt '{asked.id}' is not allowed (allowed: {allowed_text(p.prompts)}; "
            "ops allow prompts with POLICY_PROMPTS)",
            None,
            "prompt",
        )
        return
    if asked is not None and asked.variables and p.prompt_variables == "off":
        m.violate(
            "prompt.variables",
            "prompt variables are set by the server (POLICY_PROMPT_VARIABLES=off); send none",
            None,
        )


def reasoning(m: Merge[RealtimeSession]) -> None:
    """Reasoning effort from POLICY_REASONING_EFFORTS."""
    allowed = m.policy.reasoning_efforts
    effort = m.request.reasoning.effort if m.request.reasoning else None
    if effort is not None:
        clamp_to = allowed[0] if allowed else None
        m.allowed("reasoning.effort", "reasoning effort", effort, allowed, clamp_to)


def truncation(m: Merge[RealtimeSession]) -> None:
    """POLICY_TRUNCATION: the caller's choice (`client`), or a value the server pins."""
    pinned, asked = m.policy.truncation, m.request.truncation
    if pinned == "client":
        return
    if asked is not None and asked != pinned:
        m.violate(
            "truncation",
            f"truncation is set to '{pinned}' by the server (POLICY_TRUNCATION)",
            pinned,
        )
    elif asked is None and pinned != "auto":
        m.pin("truncation", pinned, "server truncation")
