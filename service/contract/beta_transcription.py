"""The beta transcription-session shape (`POST /v1/realtime/transcription_sessions`).

What frontends written against the beta API (and the SDK's
`client.beta.realtime.transcription_sessions.create`) send. As with
`/v1/realtime/sessions`, it is translated into OpenAI's GA transcription
session before the policy runs, and the GA answer is translated back.

`modalities` is accepted and not forwarded: a transcription session only ever
produces text, and the GA shape has no such field. The secret's lifetime is
`client_secret.expires_at` in this shape (sic: the beta API's name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from service.contract.beta import (
    AudioFormat,
    ExpiresAfter,
    InputAudioNoiseReduction,
    InputAudioTranscription,
    StrictModel,
    TurnDetection,
)
from service.contract.translate import FORMAT_FROM_GA, FORMAT_TO_GA, check_turn_detection


class TranscriptionClientSecret(StrictModel):
    """The beta transcription request's `client_secret` object."""

    expires_at: ExpiresAfter | None = None


class TranscriptionSessionRequest(StrictModel):
    """Body of `POST /v1/realtime/transcription_sessions`."""

    client_secret: TranscriptionClientSecret | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    input_audio_format: AudioFormat | None = None
    input_audio_noise_reduction: InputAudioNoiseReduction | None = None
    input_audio_transcription: InputAudioTranscription | None = None
    modalities: Annotated[list[Literal["text", "audio"]], Field(min_length=1)] | None = None
    turn_detection: TurnDetection | None = None


BETA_TRANSCRIPTION_NAMES: dict[str, str] = {
    "audio.input.format": "input_audio_format",
    "audio.input.noise_reduction": "input_audio_noise_reduction",
    "audio.input.transcription": "input_audio_transcription",
    "audio.input.turn_detection": "turn_detection",
    "expires_after": "client_secret.expires_at",
}


def beta_transcription_param(path: str) -> str:
    """A GA path named as this endpoint's callers wrote it."""
    for ga, beta in BETA_TRANSCRIPTION_NAMES.items():
        if path == ga or path.startswith(ga + "."):
            return beta + path[len(ga) :]
    return path


def transcription_to_ga(request: TranscriptionSessionRequest) -> dict[str, Any]:
    """The GA transcription session a beta request asks for (400 if GA cannot carry it)."""
    check_turn_detection(request.turn_detection)
    audio_in: dict[str, Any] = {}
    if request.input_audio_format is not None:
        audio_in["format"] = FORMAT_TO_GA[request.input_audio_format]
    if request.input_audio_noise_reduction is not None:
        audio_in["noise_reduction"] = request.input_audio_noise_reduction.model_dump()
    if request.input_audio_transcription is not None:
        audio_in["transcription"] = request.input_audio_transcription.model_dump(exclude_none=True)
    td = request.turn_detection
    if td is not None:
        audio_in["turn_detection"] = {
            **td.model_dump(exclude_none=True),
            "type": td.type or "server_vad",
        }
    elif "turn_detection" in request.model_fields_set:
        audio_in["turn_detection"] = None
    out: dict[str, Any] = {"type": "transcription"}
    if audio_in:
        out["audio"] = {"input": audio_in}
    if request.include is not None:
        out["include"] = list(request.include)
    return out


def transcription_beta_view(session: Mapping[str, Any]) -> dict[str, Any]:
    """The beta transcription session for a GA one (lenient: reads OpenAI's answer)."""
    audio_in = (session.get("audio") or {}).get("input") or {}
    fmt = audio_in.get("format")
    td = audio_in.get("turn_detection")
    keep_td = ("type", "threshold", "prefix_padding_ms", "silence_duration_ms")
    return {
        "id": session.get("id"),
        "object": "realtime.transcription_session",
        "input_audio_format": FORMAT_FROM_GA.get(str(fmt.get("type")))
        if isinstance(fmt, Mapping)
        else None,
        "input_audio_transcription": audio_in.get("transcription"),
        "input_audio_noise_reduction": audio_in.get("noise_reduction"),
        "turn_detection": {k: td[k] for k in keep_td if k in td}
        if isinstance(td, Mapping)
        else None,
        "include": session.get("include"),
        "modalities": ["text"],
    }
