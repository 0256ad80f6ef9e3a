"""The sessions a mint answers with: what was asked, with OpenAI's defaults filled in.

OpenAI's GA endpoints return the whole effective session, not only the fields
sent, so the emulator does too: a client (or the service) that reads a
default back sees one. The defaults are those the GA API documents and
returns (`RealtimeCreateClientSecretResponse`, `RealtimeTranslation…Response`).
"""

from __future__ import annotations

from typing import Any

DEFAULT_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "You are a helpful assistant. (emulator default instructions)",
    "tools": [],
    "tool_choice": "auto",
    "tracing": None,
    "max_output_tokens": "inf",
}
DEFAULT_AUDIO: dict[str, dict[str, Any]] = {
    "input": {
        "format": {"type": "audio/pcm", "rate": 24000},
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
            "create_response": True,
            "interrupt_response": True,
            "idle_timeout_ms": None,
        },
    },
    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
}
TRANSCRIPTION_INPUT: dict[str, Any] = {
    "format": {"type": "audio/pcm", "rate": 24000},
    "transcription": {"model": "gpt-transcribe"},
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
    },
}


def realtime(asked: dict[str, Any]) -> dict[str, Any]:
    """A realtime session: the asked fields over the defaults, each audio side merged."""
    session = {**DEFAULT_SESSION, **asked}
    audio = asked.get("audio", {})
    session["audio"] = {
        side: {**DEFAULT_AUDIO[side], **audio.get(side, {})} for side in ("input", "output")
    }
    return session


def transcription(asked: dict[str, Any]) -> dict[str, Any]:
    """A transcription session: its audio input over the defaults, and `include` if asked."""
    audio_in = {**TRANSCRIPTION_INPUT, **asked.get("audio", {}).get("input", {})}
    session: dict[str, Any] = {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "audio": {"input": audio_in},
    }
    if "include" in asked:
        session["include"] = asked["include"]
    return session


def translation(asked: dict[str, Any]) -> dict[str, Any]:
    """A translation session: the model asked, audio in and out with their defaults."""
    audio = asked.get("audio", {})
    return {
        "type": "translation",
        "model": asked["model"],
        "audio": {
            "input": {"transcription": None, "noise_reduction": None, **audio.get("input", {})},
            "output": {"language": "en", **audio.get("output", {})},
        },
    }
