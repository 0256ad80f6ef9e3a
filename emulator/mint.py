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

import orjson
from pydantic import ValidationError

from emulator import sessions
from emulator.errors import EmulatorError, InvalidRequest, MissingKey
from service.contract import (
    ClientSecretRequest,
    TranslationClientSecretRequest,
    invalid_request_from,
)
from service.contract.ga import READ_ONLY

DEFAULT_SECONDS = 600
"""`expires_after.seconds` when the request leaves it out, as OpenAI documents."""


def answer(body: bytes, has_key: bool, translation: bool = False) -> tuple[int, bytes]:
    """The status and body OpenAI would answer this mint request with.

    Realtime and transcription sessions on `client_secrets`, translation
    sessions on `translations/client_secrets`.
    """
    try:
        if not has_key:
            raise MissingKey
        return 200, _minted(body, translation)
    except EmulatorError as error:
        return error.status_code, error.body()


def _minted(body: bytes, translation: bool) -> bytes:
    model = TranslationClientSecretRequest if translation else ClientSecretRequest
    try:
        request = model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        err = invalid_request_from(exc)
        raise InvalidRequest(err.message, param=err.param, code=err.code) from None
    asked = request.model_dump(mode="json", exclude_unset=True)
    seconds = asked.get("expires_after", {}).get("seconds") or DEFAULT_SECONDS
    asked_session = {k: v for k, v in asked.get("session", {}).items() if k not in READ_ONLY}
    if translation:
        session = sessions.translation(asked_session)
    elif asked_session.get("type") == "transcription":
        session = sessions.transcription(asked_session)
    else:
        session = sessions.realtime(asked_session)
    session["id"] = f"sess_emu_{secrets.token_hex(8)}"
    session["expires_at"] = 0
    return orjson.dumps(
        {
            "value": f"ek_emulator_{secrets.token_hex(16)}",
            "expires_at": int(time.time()) + seconds,
            "session": session,
        }
    )
