"""Policy rules for a session's audio: formats, voice, speed, noise reduction,
transcription and turn detection (shared by realtime and transcription sessions).

Formats are listed in `POLICY_ALLOWED_AUDIO_FORMATS` by their beta names
(`pcm16`, `g711_ulaw`, `g711_alaw`); the GA session writes them as objects.
"""

from __future__ import annotations

from typing import Any

from service.contract.ga import TranslationAudioInput
from service.contract.ga_audio import (
    AudioInput,
    AudioOutput,
    ServerVad,
    Transcription,
)
from service.contract.translate import FORMAT_FROM_GA, FORMAT_TO_GA
from service.policy.merge import Merge, allowed_text


def voice_value(name: str) -> Any:
    """How a listed voice is sent: a custom `voice_...` id as `{"id": ...}`."""
    return {"id": name} if name.startswith("voice_") else name


def voice(m: Merge[Any], output: AudioOutput | None) -> None:
    """The voice: the server's default, or one from POLICY_ALLOWED_VOICES (ids included)."""
    choose_voice(m, output.voice if output else None)


def choose_voice(m: Merge[Any], asked_voice: object) -> None:
    """`asked_voice`: a built-in name, a custom voice (anything with an `id`), or None."""
    p, path = m.policy, "audio.output.voice"
    asked = asked_voice if isinstance(asked_voice, str) else getattr(asked_voice, "id", None)
    if asked is None:
        m.default(path, voice_value(p.default_voice), "server default voice")
    elif not m.allowed(path, "voice", asked, p.allowed_voices, voice_value(p.default_voice)):
        return
    elif isinstance(asked_voice, str) and asked.startswith("voice_"):
        m.pin(path, voice_value(asked), "custom voices are sent by id")


def speed(m: Merge[Any], output: AudioOutput | None) -> None:
    """Spoken speed within POLICY_SPEED_MIN..POLICY_SPEED_MAX."""
    p = m.policy
    asked = output.speed if output else None
    if asked is not None and not p.speed_min <= asked <= p.speed_max:
        m.violate(
            "audio.output.speed",
            f"speed must be between {p.speed_min} and {p.speed_max}",
            min(max(asked, p.speed_min), p.speed_max),
        )


def formats(
    m: Merge[Any], audio_in: AudioInput | None, output: AudioOutput | None, speaks: bool = True
) -> None:
    """Audio formats from POLICY_ALLOWED_AUDIO_FORMATS; the API's pcm16 default pinned away.

    `speaks` is false for transcription sessions, which have no output audio.
    """
    allowed = m.policy.allowed_audio_formats
    sides: list[tuple[str, AudioInput | AudioOutput | None, str]] = [
        ("audio.input.format", audio_in, "input_audio_format")
    ]
    if speaks:
        sides.append(("audio.output.format", output, "output_audio_format"))
    for path, side, label in sides:
        chosen = side.format if side else None
        asked = FORMAT_FROM_GA[chosen.type] if chosen else None
        if asked is None and "pcm16" not in allowed:
            m.pin(path, FORMAT_TO_GA[allowed[0]], "the API's default pcm16 is not allowed")
        elif asked is not None:
            m.allowed(path, label, asked, allowed, FORMAT_TO_GA[allowed[0]] if allowed else None)


def noise_reduction(m: Merge[Any], audio_in: AudioInput | TranslationAudioInput | None) -> None:
    """Noise reduction kinds from POLICY_ALLOWED_NOISE_REDUCTION (refused: left off)."""
    nr = audio_in.noise_reduction if audio_in else None
    if nr is not None:
        path = "audio.input.noise_reduction"
        allowed = m.policy.allowed_noise_reduction
        m.allowed(f"{path}.type", "noise reduction", nr.type, allowed, None, path)


def transcription(m: Merge[Any], audio_in: AudioInput | None) -> None:
    """Transcription models from POLICY_ALLOWED_TRANSCRIPTION_MODELS; the first by default."""
    t: Transcription | None = audio_in.transcription if audio_in else None
    if t is None:
        return
    allowed = m.policy.allowed_transcription_models
    path = "audio.input.transcription"
    if not allowed:
        m.violate(path, "input audio transcription is disabled by the server", None)
    elif t.model is None:
        m.default(path, t.model_copy(update={"model": allowed[0]}), "server transcription model")
    else:
        clamped = t.model_copy(update={"model": allowed[0]})
        m.allowed(f"{path}.model", "transcription model", t.model, allowed, clamped, path)


def turn_detection(m: Merge[Any], audio_in: AudioInput | None) -> None:
    """VAD kinds from POLICY_ALLOWED_TURN_DETECTION; idle timeout capped by its maximum."""
    p, path = m.policy, "audio.input.turn_detection"
    allowed = p.allowed_turn_detection
    td = audio_in.turn_detection if audio_in else None
    if td is not None:
        kind: str = td.type
    else:
        explicit = audio_in is not None and "turn_detection" in audio_in.model_fields_set
        kind = "none" if explicit else "absent"
    fallback = None if allowed[0] == "none" else {"type": allowed[0]}
    if kind == "absent":
        if "server_vad" not in allowed:
            m.pin(path, fallback, "the API's default server_vad is not allowed")
    else:
        m.allowed(path, "turn detection", kind, allowed, fallback)
    idle = td.idle_timeout_ms if isinstance(td, ServerVad) else None
    cap = p.idle_timeout_ms_max
    if idle is not None and cap is not None and idle > cap and kind in allowed:
        m.violate(
            f"{path}.idle_timeout_ms",
            f"idle_timeout_ms is capped at {cap} (POLICY_IDLE_TIMEOUT_MS_MAX)",
            cap,
        )


def languages(m: Merge[Any], audio_in: AudioInput | None) -> None:
    """Input languages named by a transcription must be in POLICY_TRANSCRIPTION_LANGUAGES."""
    allowed = m.policy.transcription_languages
    t = audio_in.transcription if audio_in else None
    if allowed is None or t is None:
        return
    path = "audio.input.transcription"
    if t.language is not None:
        m.allowed(f"{path}.language", "language", t.language, allowed, None)
    refused = [code for code in t.languages or () if code not in allowed]
    if refused:
        kept = [code for code in t.languages or () if code in allowed]
        m.violate(
            f"{path}.languages",
            f"languages not allowed: {', '.join(refused)} (allowed: {allowed_text(allowed)})",
            kept or None,
        )
