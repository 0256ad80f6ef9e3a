"""Policy rules for GA-only session features: reasoning effort, truncation.

Both are open by default: they only tune the model. (Prompt objects, the
other GA-only feature, are refused by the contract: OpenAI shut them down.)
"""

from __future__ import annotations

from service.contract.ga import RealtimeSession
from service.policy.merge import Merge


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
