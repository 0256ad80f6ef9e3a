"""The mint endpoints for transcription and translation tokens.

`POST /v1/realtime/transcription_sessions` (beta shape, translated into OpenAI's
GA transcription session as `/v1/realtime/sessions` is into a realtime one) and
`POST /v1/realtime/translations/client_secrets` (OpenAI's GA translation
request). Both run the same pipeline as the realtime endpoints in
`service.api.mint`: strict parse, policy, the caller's limits, one upstream
mint, so they count against the same rate limits and quotas.
"""

from __future__ import annotations

from typing import Any

from service.api.mint import (
    MintContext,
    Plan,
    answer_ga,
    log_fields,
    mint_upstream,
    plan,
)
from service.contract import (
    TranscriptionSession,
    TranslationClientSecretRequest,
    parse,
    translated,
)
from service.contract.beta_transcription import (
    TranscriptionSessionRequest,
    beta_transcription_param,
    transcription_beta_view,
    transcription_to_ga,
)


async def create_transcription_session(
    context: MintContext, body: bytes, dry_run: bool
) -> tuple[dict[str, Any], Plan]:
    """`POST /v1/realtime/transcription_sessions`: beta shape in, beta shape plus secret out."""
    request = parse(TranscriptionSessionRequest, body, beta=True)
    expires = request.client_secret.expires_at if request.client_secret else None
    session = translated(TranscriptionSession, transcription_to_ga(request))
    name = beta_transcription_param
    planned = plan(context, session, expires.seconds if expires else None, name, name)
    log_fields(context.fields, "transcription_sessions", planned)
    if dry_run:
        return planned.dry_run_answer(transcription_beta_view(planned.body["session"])), planned
    minted = await mint_upstream(context, planned)
    view = transcription_beta_view(minted.session or planned.body["session"])
    return planned.beta_answer(view, minted), planned


def _translation_param(path: str) -> str:
    return path if path.startswith("expires_after.") else f"session.{path}"


async def create_translation_client_secret(
    context: MintContext, body: bytes, dry_run: bool
) -> tuple[dict[str, Any], Plan]:
    """`POST /v1/realtime/translations/client_secrets`: OpenAI's GA translation shapes."""
    request = parse(TranslationClientSecretRequest, body)
    seconds = request.expires_after.seconds if request.expires_after else None
    planned = plan(context, request.session, seconds, _translation_param, str)
    log_fields(context.fields, "translation_client_secrets", planned)
    return await answer_ga(context, planned, dry_run)
