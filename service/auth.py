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
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any, Protocol

import structlog

from service.config import Settings
from service.errors import Unauthenticated

log = structlog.get_logger("service.auth")
Networks = tuple[IPv4Network | IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: who, what selects their profile, and from where."""

    identity: str
    ip: str
    claim: str | None = None


def new_api_key(name: str) -> tuple[str, str]:
    """A fresh random key and its `AUTH_API_KEYS` entry (`name:sha256hex`)."""
    key = f"rtp_{secrets.token_urlsafe(32)}"
    return key, f"{name}:{hashlib.sha256(key.encode()).hexdigest()}"


def _trusted(address: str, networks: Networks) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(scope: MutableMapping[str, Any], networks: Networks) -> str:
    """The caller's address: the peer, or behind trusted proxies the first untrusted hop."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not networks or not _trusted(peer, networks):
        return str(peer)
    forwarded = _header(scope, b"x-forwarded-for")
    hops = [hop.strip() for hop in forwarded.split(",")] if forwarded else []
    for hop in reversed(hops):
        if hop and not _trusted(hop, networks):
            return hop
    return str(peer)


def _header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_token(scope: MutableMapping[str, Any]) -> str | None:
    value = _header(scope, b"authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None


def unauthenticated(message: str, error: str | None = None) -> Unauthenticated:
    """A 401 whose WWW-Authenticate tells clients how to authenticate."""
    challenge = 'Bearer realm="realtime-token-proxy"'
    if error:
        challenge += f', error="{error}"'
    return Unauthenticated(message, headers={"WWW-Authenticate": challenge})


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
        key = bearer_token(scope) or _header(scope, b"x-api-key")
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
        identity = _header(scope, self._header) if _trusted(peer, self._networks) else None
        if not identity or not identity.strip():
            raise unauthenticated("Not authenticated by the gateway.")
        return Caller(identity.strip(), ip)


async def identify(
    scope: MutableMapping[str, Any], networks: Networks, fields: dict[str, Any]
) -> Caller:
    """Authenticate the request's caller (401 otherwise), noting who and from where in the log."""
    ip = client_ip(scope, networks)
    fields["client_ip"] = ip
    authenticator: Authenticator = scope["state"]["auth"]
    caller = await authenticator.authenticate(scope, ip)
    fields["identity"] = caller.identity
    return caller


def build_authenticator(settings: Settings) -> Authenticator:
    """The authenticator for `AUTH_MODE`."""
    if settings.auth_mode == "api_key":
        return ApiKeyAuth(settings.auth_api_keys)
    if settings.auth_mode == "jwt":
        from service.jwt_auth import JwtAuth  # imports cryptography: only when used

        return JwtAuth(settings)
    if settings.auth_mode == "gateway":
        assert settings.auth_gateway_header  # noqa: S101 - Settings validated it
        return GatewayAuth(settings.auth_gateway_header, settings.trusted_proxies)
    log.warning("auth_disabled", note="AUTH_MODE=none: anyone can mint; development only")
    return NoAuth()
