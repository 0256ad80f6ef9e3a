"""AUTH_MODE=jwt: verify caller JWTs (HS256 secret, or asymmetric keys from a JWKS).

Signature, `exp` (required, small leeway), `sub`, issuer and audience are all
verified. The accepted algorithms are fixed by configuration, never taken from
the token, which rules out `alg: none` and algorithm confusion (an HS256 token
"signed" with an RSA public key). JWKS keys are cached and refetched at most
once per `AUTH_JWT_JWKS_REFRESH_SECONDS` when an unknown `kid` appears, so a
flood of bad tokens cannot hammer the identity provider. Only a successful
fetch starts that interval: a failed one (the provider down at start-up) is
retried after a short, growing backoff, so valid tokens are accepted within
seconds of the provider's return rather than a minute later.

Its own module because PyJWT pulls in `cryptography`: processes in other auth
modes never import it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
import jwt
import structlog

from service.auth.callers import Caller, bearer_token, unauthenticated
from service.config import Settings

log = structlog.get_logger("service.auth")
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


class JwtAuth:
    """AUTH_MODE=jwt: HS256 with a shared secret, or asymmetric keys from a JWKS."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.auth_jwt_issuer
        self._audience = settings.auth_jwt_audience
        self._leeway = settings.auth_jwt_leeway_seconds
        self._claim = settings.auth_profile_claim
        secret = settings.auth_jwt_secret
        self._secret = secret.get_secret_value().encode() if secret else None
        self._jwks_url = settings.auth_jwt_jwks_url
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        self._refresh_seconds = settings.auth_jwt_jwks_refresh_seconds
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._retry_at = float("-inf")
        self._retry_seconds = RETRY_FIRST_SECONDS
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Fetch the JWKS once at start-up (a failure is logged; requests retry)."""
        await self.refresh(force=True)

    async def aclose(self) -> None:
        """Close the JWKS client."""
        await self._http.aclose()

    async def refresh(self, force: bool = False) -> None:
        """Fetch the JWKS, unless forced at most once per refresh interval after a success.

        A failure does not start that interval; it is retried after a backoff
        that doubles from RETRY_FIRST_SECONDS up to RETRY_MAX_SECONDS.
        """
        if self._jwks_url is None:
            return
        async with self._lock:
            now = time.monotonic()
            if not force and (
                now - self._fetched_at < self._refresh_seconds or now < self._retry_at
            ):
                return
            try:
                response = await self._http.get(self._jwks_url)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json()).keys
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                self._retry_at = time.monotonic() + self._retry_seconds
                log.warning(
                    "jwks_fetch_failed", error=type(exc).__name__, retry_in_s=self._retry_seconds
                )
                self._retry_seconds = min(self._retry_seconds * 2, RETRY_MAX_SECONDS)
                return
            self._fetched_at = time.monotonic()
            self._retry_seconds = RETRY_FIRST_SECONDS
            self._keys = {key.key_id: key for key in keys}
            log.info("jwks_fetched", keys=len(self._keys))

    async def _key(self, kid: str | None) -> Any:
        if self._secret is not None:
            return self._secret
        if kid not in self._keys:
            await self.refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values())).key
        if kid not in self._keys:
            raise unauthenticated("Token signed with an unknown key.", "invalid_token")
        return self._keys[kid].key

    async def authenticate(self, scope: MutableMapping[str, Any], ip: str) -> Caller:
        token = bearer_token(scope)
        if not token:
            raise unauthenticated("Missing bearer token.")
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in self._algorithms:
                raise unauthenticated("Token algorithm not accepted.", "invalid_token")
            claims = jwt.decode(
                token,
                key=await self._key(header.get("kid")),
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("Token expired.", "invalid_token") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise unauthenticated("Invalid token.", "invalid_token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise unauthenticated("Token has no subject.", "invalid_token")
        claim = claims.get(self._claim) if self._claim else None
        return Caller(subject, ip, claim if isinstance(claim, str) else None)
