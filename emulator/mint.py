"""Minting: `POST /v1/realtime/client_secrets` and `…/translations/client_secrets`.

Like OpenAI's endpoints, a mint needs a key header, refuses a body the API
would refuse (a 400 in OpenAI's envelope, with `param`), and answers
`{"value", "expires_at", "session"}` with the session's defaults filled in.
Its secrets are plainly fake (`ek_emulator_…`) and open no Realtime
connection.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from emulator import schema, sessions
from emulator.errors import EmulatorError, InvalidRequest, MissingKey

DEFAULT_SECONDS = 600
"""`expires_after.seconds` when the request leaves it out, as OpenAI documents."""
REQUEST = "RealtimeCreateClientSecretRequest"
TRANSLATION_REQUEST = "RealtimeTranslationClientSecretCreateRequest"


def answer(body: bytes, has_key: bool, translation: bool = False) -> tuple[int, bytes]:
    """The status and body OpenAI would answer this mint request with.

    Realtime and transcription sessions on `client_secrets`, translation
    sessions on `translations/client_secrets`, each validated against its
    published request schema.
    """
    try:
        if not has_key:
            raise MissingKey
        return 200, _minted(body, translation)
    except EmulatorError as error:
        return error.status_code, error.body()


def _minted(body: bytes, translation: bool) -> bytes:
    try:
        request: Any = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    refused = schema.published(TRANSLATION_REQUEST if translation else REQUEST).refusal(request)
    if refused is not None:
        raise refused
    asked_session: dict[str, Any] = request.get("session", {})
    if translation:
        session = sessions.translation(asked_session)
    elif asked_session.get("type") == "transcription":
        session = sessions.transcription(asked_session)
    else:
        session = sessions.realtime(asked_session)
    session["id"] = f"sess_emu_{secrets.token_hex(8)}"
    session["expires_at"] = 0
    seconds = int(request.get("expires_after", {}).get("seconds", DEFAULT_SECONDS))
    return orjson.dumps(
        {
            "value": f"ek_emulator_{secrets.token_hex(16)}",
            "expires_at": int(time.time()) + seconds,
            "session": session,
        }
    )
