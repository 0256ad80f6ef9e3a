"""What the service knows about OpenAI's models: names, and announced shutdown dates.

Knowing a model is not a condition for allowing it: any name listed in
`POLICY_ALLOWED_MODELS` (or the transcription and translation lists) is
accepted, so a model OpenAI adds needs configuration, not a release. What is
known here only produces warnings, at start-up and in `/readyz`: a name the
service has never heard of (a typo is the likely cause), and a model whose
announced shutdown is past or less than `SHUTDOWN_WARNING_DAYS` away.

Dates are OpenAI's, from the deprecation notes in the openai SDK 3.57 types
(`RealtimeSessionCreateRequest.model`, `AudioTranscription.model`); see
https://developers.openai.com/api/docs/deprecations.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from service.contract.beta import KNOWN_MODELS as KNOWN_REALTIME_MODELS

SHUTDOWN_WARNING_DAYS = 60
SHUTDOWNS: dict[str, date] = {
    **dict.fromkeys(
        (
            "gpt-realtime",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime-mini-2025-12-15",
            "gpt-audio-mini",
            "gpt-audio-mini-2025-12-15",
        ),
        date(2027, 1, 20),
    ),
    **dict.fromkeys(
        (
            "whisper-1",
            "gpt-4o-mini-transcribe",
            "gpt-4o-mini-transcribe-2025-12-15",
            "gpt-4o-transcribe",
            "gpt-4o-transcribe-diarize",
        ),
        date(2027, 2, 26),
    ),
}
"""Announced shutdown dates by model name."""

KNOWN_TRANSCRIPTION_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe",
        "gpt-4o-transcribe-diarize",
        "gpt-realtime-whisper",
    }
)
KNOWN_TRANSLATION_MODELS = frozenset({"gpt-realtime-translate"})
LISTS = (
    ("POLICY_ALLOWED_MODELS", "allowed_models", KNOWN_REALTIME_MODELS),
    (
        "POLICY_ALLOWED_TRANSCRIPTION_MODELS",
        "allowed_transcription_models",
        KNOWN_TRANSCRIPTION_MODELS,
    ),
    ("POLICY_ALLOWED_TRANSLATION_MODELS", "allowed_translation_models", KNOWN_TRANSLATION_MODELS),
)


def model_warnings(policies: Iterable[tuple[str, Any]], today: date) -> list[dict[str, Any]]:
    """Unknown and retiring models in each named policy (the env policy and every profile).

    Each warning names the variable, the profile, the model and why, so ops
    see at start-up what to change before OpenAI turns a model off.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for profile, policy in policies:
        for variable, field, known in LISTS:
            for model in getattr(policy, field):
                key = (variable, model)
                if key in found:
                    found[key]["profiles"].append(profile)
                    continue
                warning = _warning(model, known, today)
                if warning is not None:
                    found[key] = {"setting": variable, "model": model, **warning}
                    found[key]["profiles"] = [profile]
    return list(found.values())


def allowed_models(policies: Iterable[tuple[str, Any]]) -> list[str]:
    """Every model any named policy allows (Realtime, transcription, translation, GPT-Live),
    once each in order: what the price table must cover."""
    names = [
        model
        for _, policy in policies
        for model in (
            *(m for _, field, _known in LISTS for m in getattr(policy, field)),
            *policy.live.allowed_models,
        )
    ]
    return list(dict.fromkeys(names))


def _warning(model: str, known: frozenset[str], today: date) -> dict[str, Any] | None:
    shutdown = SHUTDOWNS.get(model)
    if shutdown is not None:
        days = (shutdown - today).days
        if days <= SHUTDOWN_WARNING_DAYS:
            when = "was shut down" if days < 0 else f"shuts down in {days} days"
            return {
                "reason": "shutdown",
                "shutdown_date": shutdown.isoformat(),
                "message": f"{model} {when} ({shutdown.isoformat()}, announced by OpenAI)",
            }
        return None
    if model not in known:
        return {
            "reason": "unknown",
            "message": f"{model} is not a model this service knows; allowed as configured",
        }
    return None
