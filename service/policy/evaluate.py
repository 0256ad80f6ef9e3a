"""The policy's one entry point: any requested session in, the effective session out.

Every kind of session the service creates (a Realtime, transcription or
translation client secret; a Realtime call; a GPT-Live session) is evaluated
by `evaluate`, which picks the rules for the session's kind. Rules name
fields by their GA path within the session (`audio.output.voice`), in
violations and decisions alike; how a door spells them for its callers
(`voice` on the beta endpoint, `session.audio.output.voice` on the GA one)
is the door's business, not the policy's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from service.contract import LiveSession, RealtimeSession, TranscriptionSession, TranslationSession
from service.policy.model import Policy
from service.policy.rules import Outcome, evaluate_realtime
from service.policy.rules_live import evaluate_live
from service.policy.rules_sessions import evaluate_transcription, evaluate_translation

AnySession: TypeAlias = RealtimeSession | TranscriptionSession | TranslationSession | LiveSession
Rules: TypeAlias = Callable[[Policy, Any, int | None, str], Outcome]

RULES_BY_KIND: dict[type[AnySession], Rules] = {
    RealtimeSession: evaluate_realtime,
    TranscriptionSession: evaluate_transcription,
    TranslationSession: evaluate_translation,
    LiveSession: evaluate_live,
}
"""Each kind's rules. `caller_tag` goes where the kind carries the caller (Realtime
trace metadata, GPT-Live's `safety_identifier`); transcription and translation
sessions carry it nowhere."""


def evaluate(
    policy: Policy, session: AnySession, *, caller_tag: str, ttl_seconds: int | None = None
) -> Outcome:
    """Merge a requested session into `policy`: the effective session, or a `PolicyViolation`.

    `ttl_seconds` is the client secret's asked lifetime (None: the policy's
    default; a call has none). `caller_tag` is the caller as OpenAI should see
    it (hashed with AUTH_HASH_IDENTITIES). Pure: no I/O, nothing logged.
    """
    return RULES_BY_KIND[type(session)](policy, session, ttl_seconds, caller_tag)
