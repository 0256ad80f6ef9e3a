"""Policy for the other session kinds: transcription-only and translation sessions.

They share the realtime session's audio rules (formats, noise reduction,
transcription models, turn detection) and add their own: which kinds of
session may be minted at all (POLICY_SESSION_TYPES), which input languages a
transcription may name (POLICY_TRANSCRIPTION_LANGUAGES) and which translation
models and target languages are allowed (POLICY_ALLOWED_TRANSLATION_MODELS,
POLICY_TRANSLATION_LANGUAGES).
"""

from __future__ import annotations

from service.contract.ga import TranscriptionSession, TranslationSession
from service.policy import rules_audio
from service.policy.merge import Merge, session_type
from service.policy.model import Policy
from service.policy.rules import Outcome, conclude


def evaluate_transcription(
    policy: Policy, request: TranscriptionSession, ttl_seconds: int | None, caller_tag: str
) -> Outcome:
    """Merge a transcription session into `policy` (GA `type: "transcription"`)."""
    m = Merge(policy, request)
    session_type(m, "transcription")
    audio_in = request.audio.input if request.audio else None
    rules_audio.formats(m, audio_in, None, speaks=False)
    rules_audio.noise_reduction(m, audio_in)
    allowed = policy.allowed_transcription_models
    if (audio_in is None or audio_in.transcription is None) and allowed:
        m.default("audio.input.transcription", {"model": allowed[0]}, "server transcription model")
    elif audio_in is not None and audio_in.transcription is not None:
        rules_audio.transcription(m, audio_in)
        rules_audio.languages(m, audio_in)
    else:
        m.violations.append(
            ("audio.input.transcription", "transcription is disabled by the server")
        )
    rules_audio.turn_detection(m, audio_in)
    return conclude(m, ttl_seconds)


def evaluate_translation(
    policy: Policy, request: TranslationSession, ttl_seconds: int | None, caller_tag: str
) -> Outcome:
    """Merge a translation session into `policy` (`/v1/realtime/translations/client_secrets`)."""
    m = Merge(policy, request)
    session_type(m, "translation")
    p = policy
    models = p.allowed_translation_models
    m.allowed("model", "translation model", request.model, models, p.default_translation_model)
    audio = request.audio
    audio_in = audio.input if audio else None
    target = audio.output.language if audio and audio.output else None
    allowed = p.translation_languages
    if target is not None and allowed is not None:
        clamp_to = allowed[0] if allowed else None
        m.allowed("audio.output.language", "target language", target, allowed, clamp_to)
    rules_audio.noise_reduction(m, audio_in)
    t = audio_in.transcription if audio_in else None
    if t is not None:
        path, allowed_models = "audio.input.transcription", p.allowed_transcription_models
        m.allowed(f"{path}.model", "transcription model", t.model, allowed_models, None, path)
    outcome = conclude(m, ttl_seconds)
    # OpenAI's translation endpoint takes no `type` (the endpoint says it).
    outcome.session.pop("type", None)
    return outcome
