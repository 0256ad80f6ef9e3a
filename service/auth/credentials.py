"""Who is minting: caller authentication for each `AUTH_MODE`.

- `api_key`: keys are stored as SHA-256 hashes only (`AUTH_API_KEYS=name:hex`);
  a presented key (`Authorization: Bearer` so the SDKs' `api_key` works, or
  `X-API-Key`) is hashed and compared against every entry in constant time.
- `jwt`: signature, `exp` (required, small leeway), issuer and audience are all
  verified. The accepted algorithms are fixed by configuration, never by the
  token, which rules out `alg: none` and algorithm confusion (an HS256 token
  "signed" with an RSA public key). JWKS keys are cached and refetched at most
  once a minute when an unknown `kid` appears.
- `gateway`: a trusted gateway has authenticated; its identity header is
  believed only from peers inside `TRUSTED_PROXIES`.
- `none`: local development; every caller is `anonymous`.

Failures are 401s with `WWW-Authenticate`; no credential is ever logged or
echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any, Protocol

import structlog

from service.auth.callers import (
    Caller,
    Networks,
    bearer_token,
    caller_tag,
    client_ip,
    header,
    headers,
    trusted,
    unauthenticated,
)
from service.config import Settings
from service.core.errors import NotFound

log = structlog.get_logger("service.auth")


def new_api_key(name: str) -> tuple[str, str]:
    """A fresh random key and its `AUTH_API_KEYS` entry (`name:sha256hex`)."""
    key = f"rtp_{secrets.token_urlsafe(32)}"
    return key, f"{name}:{hashlib.sha256(key.encode()).hexdigest()}"


class Authenticator(Protocol):
    """Turns a request's credentials into a `Caller`, or raises a 401."""

    async def authenticate(self, scope: MutableMapping[str, Any], ip: str) -> Caller: ...

    async def start(self) -> None:
        """Prepare at start-up (fetch keys)."""

    async def aclose(self) -> None:
        """Release resources at shutdown."""


class _Stateless:
    """Authenticators with nothing to prepare or release."""

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NoAuth(_Stateless):
    """AUTH_MODE=none: everyone is `anonymous` (development only)."""

    async def authenticate(self, scope: MutableMapping[str, Any], ip: str) -> Caller:
        return Caller("anonymous", ip)


class ApiKeyAuth(_Stateless):
    """AUTH_MODE=api_key: hashed keys, constant-time comparison."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = [(name, bytes.fromhex(digest)) for name, digest in entries.items()]

    async def authenticate(self, scope: MutableMapping[str, Any], ip: str) -> Caller:
        key = bearer_token(scope) or header(scope, b"x-api-key")
        if not key:
            raise unauthenticated("Missing API key: send it as 'Authorization: Bearer <key>'.")
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for name, expected in self._entries:  # no early exit: timing reveals nothing
            if hmac.compare_digest(digest, expected):
                found = name
        if found is None:
            raise unauthenticated("Invalid API key.", "invalid_token")
        return Caller(found, ip)


class GatewayAuth(_Stateless):
    """AUTH_MODE=gateway: the identity header, believed only from trusted proxies."""

    def __init__(self, header: str, networks: Networks) -> None:
        self._header = header.lower().encode()
        self._networks = networks

    async def authenticate(self, scope: MutableMapping[str, Any], ip: str) -> Caller:
        peer = scope["client"][0] if scope.get("client") else ""
        values = headers(scope, self._header) if trusted(peer, self._networks) else []
        if len(values) > 1:
            # One came from the client and one from the gateway: no way to tell which.
            raise unauthenticated("More than one identity header; refusing to choose one.")
        identity = values[0].strip() if values else ""
        if not identity:
            raise unauthenticated("Not authenticated by the gateway.")
        return Caller(identity, ip)


async def identify(
    scope: MutableMapping[str, Any],
    authenticator: Authenticator,
    networks: Networks,
    fields: dict[str, Any],
    hashed: bool = False,
) -> Caller:
    """Authenticate the request's caller (401 otherwise), noting who and from where in the log.

    `hashed` (AUTH_HASH_IDENTITIES): the log names the caller by a hash, as traces do.
    """
    ip = client_ip(scope, networks)
    fields["client_ip"] = ip
    presented = bearer_token(scope) or header(scope, b"x-api-key")
    if presented and presented.startswith("ek_"):
        # A client secret is OpenAI's credential for one browser session, not a
        # caller of this service: refused in every mode, AUTH_MODE=none too.
        raise unauthenticated(
            "A client secret (ek_...) is not a credential for this service; "
            "authenticate as its caller instead.",
            "invalid_token",
        )
    caller = await authenticator.authenticate(scope, ip)
    fields["identity"] = caller_tag(caller, hashed)
    return caller


async def identify_admin(
    scope: MutableMapping[str, Any], settings: Settings, fields: dict[str, Any]
) -> str:
    """The operator making an `/admin` request, by name (401 otherwise), noted in the log.

    Without `ADMIN_API_KEYS` there are no operators: `/admin` answers the 404 of an
    unknown route, so a deployment that never configured it shows none of it. The
    keys are hashed and compared like callers' (`ApiKeyAuth`), in their own table,
    so a caller's key never opens it.
    """
    if not settings.admin_api_keys:
        raise NotFound("Invalid URL: no such route.")
    ip = client_ip(scope, settings.trusted_proxies)
    fields["client_ip"] = ip
    operator = await ApiKeyAuth(settings.admin_api_keys).authenticate(scope, ip)
    fields["admin"] = operator.identity
    return operator.identity


def build_authenticator(settings: Settings) -> Authenticator:
    """The authenticator for `AUTH_MODE`."""
    if settings.auth_mode == "api_key":
        return ApiKeyAuth(settings.auth_api_keys)
    if settings.auth_mode == "jwt":
        from service.auth.jwt import JwtAuth  # imports cryptography: only when used

        return JwtAuth(settings)
    if settings.auth_mode == "gateway":
        assert settings.auth_gateway_header  # noqa: S101 - Settings validated it
        return GatewayAuth(settings.auth_gateway_header, settings.trusted_proxies)
    log.warning("auth_disabled", note="AUTH_MODE=none: anyone can mint; development only")
    return NoAuth()
