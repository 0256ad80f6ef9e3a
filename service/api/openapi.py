"""OpenAPI for the mint endpoints, from the real request, response and error models.

The POST endpoints are plain ASGI routes (`service.api.endpoint`), so
FastAPI cannot describe them; this adds them to `/openapi.json` (and so
`/docs`) from the same pydantic models that validate the bodies, with
examples, and lists every error status from the error classes themselves.
Nothing here reads settings: no key, policy text or secret can reach the
document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.api.openapi_models import (
    CallOffer,
    ClientSecretCreated,
    DryRun,
    ErrorResponse,
    LiveSessionCreated,
    SessionCreated,
    TranscriptionSessionCreated,
)
from service.api.routes.calls import LIVE_SESSIONS_PATH, REALTIME_CALLS_PATH, STATE_PATHS
from service.api.routes.client_secrets import (
    CLIENT_SECRETS_PATH,
    SESSIONS_PATH,
    TRANSCRIPTION_SESSIONS_PATH,
    TRANSLATION_CLIENT_SECRETS_PATH,
)
from service.contract import (
    ClientSecretRequest,
    LiveCreateRequest,
    SessionRequest,
    TranslationClientSecretRequest,
)
from service.contract.beta_transcription import TranscriptionSessionRequest
from service.core.errors import caller_errors

REF = "#/components/schemas/{model}"


SESSION_EXAMPLE = {
    "model": "gpt-realtime-2",
    "voice": "marin",
    "turn_detection": {"type": "semantic_vad", "eagerness": "auto"},
}
GA_EXAMPLE = {
    "expires_after": {"anchor": "created_at", "seconds": 300},
    "session": {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "audio": {"output": {"voice": "marin"}},
    },
}


TRANSCRIPTION_EXAMPLE = {
    "input_audio_format": "pcm16",
    "input_audio_transcription": {"model": "gpt-transcribe", "language": "en"},
}
LIVE_EXAMPLE = {
    "session": {"model": "gpt-live-1", "audio": {"output": {"voice": "marin"}}},
    "transport": {"type": "webrtc", "sdp": "v=0\r\n..."},
}
TRANSLATION_EXAMPLE = {
    "session": {"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}
}


def _errors(extra: dict[int, str] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    statuses = {e.status_code: e.summary for e in caller_errors() if e.documented}
    for status, summary in {**statuses, **(extra or {})}.items():
        responses[str(status)] = {
            "description": summary,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}
            },
        }
    return responses


DRY_RUN_PARAMETER = {
    "name": "dry_run",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "Apply the policy; mint or create nothing.",
}
MODEL_PARAMETER = {
    "name": "model",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "minLength": 1},
    "description": (
        "A bare `application/sdp` offer's model (OpenAI's `?model=`); the policy's default "
        "without it. A multipart offer names its model in the `session` part instead."
    ),
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {}]


def _operation(summary: str, request: str, example: dict[str, Any], created: str) -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": REF.format(model=name)}

    responses: dict[str, Any] = {
        "200": {
            "description": "Minted (or, with dry_run, the decision).",
            "headers": {"X-Policy-Decisions": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"anyOf": [ref(created), ref("DryRun")]}}},
        },
        **_errors(),
    }
    return {
        "post": {
            "tags": ["mint"],
            "summary": summary,
            "operationId": summary.lower().replace(" ", "_"),
            "parameters": [DRY_RUN_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref(request), "example": example}},
            },
            "responses": responses,
            "security": SECURITY,
        }
    }


def _call_operations() -> dict[str, Any]:
    """The call endpoints: create a Realtime call, a Live session, and hang either up."""
    ref = {"$ref": REF.format(model="DryRun")}
    realtime = {
        "post": {
            "tags": ["calls"],
            "summary": "Create call",
            "operationId": "create_call",
            "parameters": [DRY_RUN_PARAMETER, MODEL_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {"$ref": REF.format(model="CallOffer")},
                        "encoding": {
                            "sdp": {"contentType": "application/sdp"},
                            "session": {"contentType": "application/json"},
                        },
                    },
                    "application/sdp": {"schema": {"type": "string", "pattern": "^v=0"}},
                },
            },
            "responses": {
                "201": {
                    "description": "Call created: the SDP answer for the browser.",
                    "headers": {
                        "Location": {"schema": {"type": "string"}},
                        "X-Policy-Decisions": {"schema": {"type": "string"}},
                    },
                    "content": {"application/sdp": {"schema": {"type": "string"}}},
                },
                "200": {
                    "description": "With dry_run: the decision; no call is created.",
                    "content": {"application/json": {"schema": ref}},
                },
                **_errors(),
            },
            "security": SECURITY,
        }
    }
    live = {
        "post": {
            "tags": ["calls"],
            "summary": "Create Live session",
            "operationId": "create_live_session",
            "parameters": [DRY_RUN_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": REF.format(model="LiveCreateRequest")},
                        "example": LIVE_EXAMPLE,
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Session created (or, with dry_run, the decision).",
                    "headers": {"X-Policy-Decisions": {"schema": {"type": "string"}}},
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [{"$ref": REF.format(model="LiveSessionCreated")}, ref]
                            }
                        }
                    },
                },
                **_errors(),
            },
            "security": SECURITY,
        }
    }

    def hangup(summary: str) -> dict[str, Any]:
        return {
            "post": {
                "tags": ["calls"],
                "summary": summary,
                "operationId": summary.lower().replace(" ", "_"),
                "parameters": [
                    {
                        "name": "call_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Hung up.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors({404: "No open call with this id created by this caller."}),
                },
                "security": SECURITY,
            }
        }

    return {
        REALTIME_CALLS_PATH: realtime,
        LIVE_SESSIONS_PATH: live,
        f"{REALTIME_CALLS_PATH}/{{call_id}}/hangup": hangup("Hang up call"),
        f"{LIVE_SESSIONS_PATH}/{{call_id}}/hangup": hangup("Hang up Live session"),
    }


def _document_errors(operation: dict[str, Any]) -> None:
    """A FastAPI route's operation with the errors the service answers (its 422 is a 400)."""
    ok = operation["responses"]["200"]
    operation["responses"] = {
        "200": ok,
        **_errors({404: "No open call with this id created by this caller."}),
    }
    operation["security"] = SECURITY


def document_mint_endpoints(app: FastAPI, *, client_secrets: bool = True) -> None:
    """Make `app.openapi()` include the mint endpoints, with their models and examples
    (the client-secret ones only if served: `CLIENT_SECRETS_ENABLED`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        models: list[type[BaseModel]] = [
            SessionRequest,
            ClientSecretRequest,
            TranscriptionSessionRequest,
            TranslationClientSecretRequest,
            SessionCreated,
            ClientSecretCreated,
            TranscriptionSessionCreated,
            DryRun,
            ErrorResponse,
            CallOffer,
            LiveCreateRequest,
            LiveSessionCreated,
        ]
        names, definitions = models_json_schema(
            [(model, "validation") for model in models], ref_template=REF
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(definitions.get("$defs", {}))
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        paths = schema.setdefault("paths", {})
        mints: list[tuple[str, str, type[BaseModel], dict[str, Any], str]] = [
            (SESSIONS_PATH, "Create session", SessionRequest, SESSION_EXAMPLE, "SessionCreated"),
            (
                CLIENT_SECRETS_PATH,
                "Create client secret",
                ClientSecretRequest,
                GA_EXAMPLE,
                "ClientSecretCreated",
            ),
            (
                TRANSCRIPTION_SESSIONS_PATH,
                "Create transcription session",
                TranscriptionSessionRequest,
                TRANSCRIPTION_EXAMPLE,
                "TranscriptionSessionCreated",
            ),
            (
                TRANSLATION_CLIENT_SECRETS_PATH,
                "Create translation client secret",
                TranslationClientSecretRequest,
                TRANSLATION_EXAMPLE,
                "ClientSecretCreated",
            ),
        ]
        for path, summary, request, example, created in mints if client_secrets else []:
            name = names[(request, "validation")]["$ref"].rsplit("/", 1)[-1]
            paths[path] = _operation(summary, name, example, created)
        paths.update(_call_operations())
        for path in STATE_PATHS.values():
            _document_errors(paths[path]["get"])
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
