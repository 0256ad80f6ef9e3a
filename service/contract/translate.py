"""Translate between the beta Session (the seed file's shape) and OpenAI's GA session shape.

Mapping (beta -> GA `POST /v1/realtime/client_secrets`):

- `input_audio_format` / `output_audio_format` -> `audio.input.format` /
  `audio.output.format`, as objects: `pcm16` = `{"type": "audio/pcm", "rate": 24000}`,
  `g711_ulaw` = `{"type": "audio/pcmu"}`, `g711_alaw` = `{"type": "audio/pcma"}`.
- `input_audio_noise_reduction`, `input_audio_transcription`, `turn_detection`
  -> `audio.input.noise_reduction`, `.transcription`, `.turn_detection`.
  An explicit null turn detection stays null (off); null noise reduction and
  transcription are GA's defaults (off), so they are omitted.
- `voice`, `speed` -> `audio.output.voice`, `.speed`.
- `modalities` -> `output_modalities`: `["text"]` stays; any list with `audio`
  becomes `["audio"]`, which in GA always carries its text transcript.
- `max_response_output_tokens` -> `max_output_tokens`.
- `tool_choice` naming a function -> `{"type": "function", "name": ...}`.
- `tools`, `tracing`, `instructions`, `model` keep their names.

Refused with 400 (`unsupported_parameter`), because GA cannot carry them:
`temperature` (GA has no sampling temperature), turn-detection fields that
belong to the other VAD type, and an empty `modalities` list. A previous
answer's read-only fields (`id`, `object`, the old secret) are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.contract.beta import (
    SERVER_VAD_ONLY,
    InputAudioTranscription,
    Session,
    Tool,
    TurnDetection,
)
from service.core.errors import InvalidRequest

FORMAT_TO_GA: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
FORMAT_FROM_GA: dict[str, str] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}


GA_PARAMS: dict[str, str] = {
    "model": "session.model",
    "instructions": "session.instructions",
    "modalities": "session.output_modalities",
    "max_response_output_tokens": "session.max_output_tokens",
    "input_audio_format": "session.audio.input.format",
    "input_audio_noise_reduction": "session.audio.input.noise_reduction",
    "input_audio_transcription": "session.audio.input.transcription",
    "turn_detection": "session.audio.input.turn_detection",
    "output_audio_format": "session.audio.output.format",
    "voice": "session.audio.output.voice",
    "speed": "session.audio.output.speed",
    "tools": "session.tools",
    "tool_choice": "session.tool_choice",
    "tracing": "session.tracing",
}


GA_TO_BETA: dict[str, str] = {ga.removeprefix("session."): beta for beta, ga in GA_PARAMS.items()}
"""GA paths within the session -> beta names, for naming fields to beta callers."""


def beta_name(path: str) -> str:
    """A GA session path in the beta vocabulary (`audio.output.voice` -> `voice`).

    The longest GA prefix with a beta counterpart is renamed; GA-only fields
    keep their GA path. Decisions use this vocabulary on both endpoints.
    """
    if path.startswith("expires_after."):
        return path
    head = path
    while head:
        if head in GA_TO_BETA:
            return GA_TO_BETA[head] + path[len(head) :]
        head = head.rpartition(".")[0]
    return path


def beta_param(path: str) -> str:
    """Name a field as the beta endpoint's callers wrote it (errors on `/v1/realtime/sessions`)."""
    if path.startswith("expires_after."):
        return "client_secret." + path
    return beta_name(path)


def ga_param(path: str) -> str:
    """Name a field as the GA endpoint's callers wrote it (`session.` + its GA path)."""
    return path if path.startswith("expires_after.") else f"session.{path}"


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{param}' cannot be sent: {why}", param=param, code="unsupported_parameter"
    )


def check_carriable(session: Session) -> None:
    """Refuse beta fields the GA API cannot express, before any policy runs."""
    if session.temperature is not None:
        raise _unsupported(
            "temperature",
            "OpenAI's GA Realtime API has no temperature; "
            "remove it (the model's default sampling applies)",
        )
    check_turn_detection(session.turn_detection)


def check_turn_detection(td: TurnDetection | None) -> None:
    """Refuse fields of the other VAD type: GA's VAD types are disjoint objects."""
    if td is not None:
        if td.type == "semantic_vad":
            for field in SERVER_VAD_ONLY:
                if getattr(td, field) is not None:
                    raise _unsupported(f"turn_detection.{field}", "it applies to server_vad only")
        elif td.eagerness is not None:
            raise _unsupported("turn_detection.eagerness", "it applies to semantic_vad only")


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _tool(tool: Tool) -> dict[str, Any]:
    return _drop_none(
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        }
    )


def _turn_detection(td: TurnDetection) -> dict[str, Any]:
    body = td.model_dump(exclude_none=True)
    body["type"] = td.type or "server_vad"
    return body


def to_ga(session: Session) -> dict[str, Any]:
    """The GA `session` object a beta Session asks for, so one policy governs both endpoints."""
    s = session
    out: dict[str, Any] = {"type": "realtime"}
    if s.model is not None:
        out["model"] = s.model
    if s.instructions is not None:
        out["instructions"] = s.instructions
    if s.modalities is not None:
        out["output_modalities"] = ["text"] if set(s.modalities) == {"text"} else ["audio"]
    if s.max_response_output_tokens is not None:
        out["max_output_tokens"] = s.max_response_output_tokens
    audio_in: dict[str, Any] = {}
    if s.input_audio_format is not None:
        audio_in["format"] = FORMAT_TO_GA[s.input_audio_format]
    if s.input_audio_noise_reduction is not None:
        audio_in["noise_reduction"] = s.input_audio_noise_reduction.model_dump(exclude_none=True)
    if s.input_audio_transcription is not None:
        audio_in["transcription"] = s.input_audio_transcription.model_dump(exclude_none=True)
    if s.turn_detection is not None:
        audio_in["turn_detection"] = _turn_detection(s.turn_detection)
    elif "turn_detection" in s.model_fields_set:
        audio_in["turn_detection"] = None
    audio_out = _drop_none(
        {
            "format": FORMAT_TO_GA[s.output_audio_format] if s.output_audio_format else None,
            "voice": s.voice,
            "speed": s.speed,
        }
    )
    audio = _drop_none({"input": audio_in or None, "output": audio_out or None})
    if audio:
        out["audio"] = audio
    if s.tools is not None:
        out["tools"] = [_tool(tool) for tool in s.tools]
    if s.tool_choice is not None:
        out["tool_choice"] = (
            s.tool_choice
            if s.tool_choice in ("auto", "none", "required")
            else {"type": "function", "name": s.tool_choice}
        )
    if "tracing" in s.model_fields_set:
        out["tracing"] = (
            None
            if s.tracing is None
            else (
                s.tracing if isinstance(s.tracing, str) else s.tracing.model_dump(exclude_none=True)
            )
        )
    return out


def _format_from_ga(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return FORMAT_FROM_GA.get(str(value.get("type")))
    return None


def beta_view(
    ga_session: Mapping[str, Any], reverse_model_map: Mapping[str, str]
) -> dict[str, Any]:
    """The beta-shaped Session for an upstream GA session (beta endpoint responses).

    Lenient by design: this reads OpenAI's answer, which may carry fields newer
    than this code; unknown ones are left out of the beta view, never errors.
    """
    audio = ga_session.get("audio") or {}
    audio_in = audio.get("input") or {}
    audio_out = audio.get("output") or {}
    modalities = ga_session.get("output_modalities")
    choice = ga_session.get("tool_choice")
    transcription = audio_in.get("transcription")
    voice = audio_out.get("voice")
    model = ga_session.get("model")
    out: dict[str, Any] = {
        "id": ga_session.get("id"),
        "object": "realtime.session",
        "model": reverse_model_map.get(model, model) if isinstance(model, str) else model,
        "instructions": ga_session.get("instructions"),
        "modalities": (["text"] if modalities == ["text"] else ["audio", "text"])
        if modalities is not None
        else None,
        "max_response_output_tokens": ga_session.get("max_output_tokens"),
        "input_audio_format": _format_from_ga(audio_in.get("format")),
        "input_audio_noise_reduction": audio_in.get("noise_reduction"),
        "input_audio_transcription": (
            InputAudioTranscription.model_construct(
                **{k: transcription.get(k) for k in ("language", "model", "prompt")}
            ).model_dump(exclude_none=True)
            if isinstance(transcription, Mapping)
            else None
        ),
        "turn_detection": _beta_turn_detection(audio_in.get("turn_detection")),
        "output_audio_format": _format_from_ga(audio_out.get("format")),
        "voice": voice.get("id") if isinstance(voice, Mapping) else voice,
        "speed": audio_out.get("speed"),
        "tool_choice": choice.get("name") if isinstance(choice, Mapping) else choice,
        "tools": ga_session.get("tools"),
        "tracing": ga_session.get("tracing"),
    }
    return out


def _beta_turn_detection(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    keep = set(TurnDetection.model_fields)
    return {key: item for key, item in value.items() if key in keep}
