"""Caller authentication on the endpoints and /v1/policy, for each AUTH_MODE."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from service.api import create_app
from service.auth import client_ip, new_api_key
from service.config import Settings
from tests.conftest import ClientFor, MakeSettings, running, serving
from tests.paths import POLICY, SESSIONS
from tests.servers import JwksServer

pytestmark = pytest.mark.anyio
ISSUER = "https://issuer.test/"
AUDIENCE = "realtime-token-proxy"
SECRET = "hs256-shared-secret-for-tests-0123456789"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        **overrides,
    }


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["www-authenticate"].startswith("Bearer")


class TestApiKey:
    """AUTH_MODE=api_key: hashed keys, Bearer or X-API-Key."""

    @pytest.fixture(name="keyed")
    async def fixture_keyed(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> tuple[httpx.AsyncClient, str]:
        key, entry = new_api_key("mobile")
        client = await client_for(make_settings(auth_mode="api_key", auth_api_keys=entry))
        return client, key

    async def test_bearer_key_mints(self, keyed: tuple[httpx.AsyncClient, str]) -> None:
        """The key as a Bearer token (what the SDKs send) is accepted."""
        client, key = keyed
        response = await client.post(SESSIONS, json={}, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200

    async def test_x_api_key_mints(self, keyed: tuple[httpx.AsyncClient, str]) -> None:
        """The key in X-API-Key is accepted."""
        client, key = keyed
        response = await client.post(SESSIONS, json={}, headers={"X-API-Key": key})
        assert response.status_code == 200

    async def test_missing_key_is_401(
        self, keyed: tuple[httpx.AsyncClient, str], upstream: respx.MockRouter
    ) -> None:
        """No key: 401 with WWW-Authenticate, nothing minted."""
        client, _ = keyed
        assert_401(await client.post(SESSIONS, json={}))
        assert not upstream.routes["mint"].called

    async def test_wrong_key_is_401(self, keyed: tuple[httpx.AsyncClient, str]) -> None:
        """A key whose hash is not configured is refused, and not echoed."""
        client, key = keyed
        response = await client.post(SESSIONS, json={}, headers={"X-API-Key": key + "x"})
        assert_401(response)
        assert key not in response.text

    async def test_policy_view_needs_auth(self, keyed: tuple[httpx.AsyncClient, str]) -> None:
        """GET /v1/policy is per caller, so it is authenticated too."""
        client, key = keyed
        assert_401(await client.get(POLICY))
        response = await client.get(POLICY, headers={"X-API-Key": key})
        assert response.status_code == 200

    def test_plaintext_key_in_config_is_refused(self, make_settings: MakeSettings) -> None:
        """AUTH_API_KEYS takes hashes only; a plaintext key stops start-up."""
        with pytest.raises(ValueError, match=r"AUTH_API_KEYS|sha256"):
            make_settings(auth_mode="api_key", auth_api_keys="mobile:rtp_plaintextkey")


class TestApiKeyCommand:
    """`python -m service hash-key`."""

    def test_entry_matches_key(self) -> None:
        """The printed entry is the name and the SHA-256 of the printed key."""
        key, entry = new_api_key("web")
        assert entry == f"web:{hashlib.sha256(key.encode()).hexdigest()}"
        assert new_api_key("web")[0] != key


@pytest.fixture(name="rsa_key")
def fixture_rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key generated for this test run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(name="jwks")
def fixture_jwks(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    """A local JWKS endpoint publishing the test key as kid `k1`."""
    server = JwksServer()
    jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    server.document = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    yield server
    server.close()


def jwks_settings(make_settings: MakeSettings, jwks: JwksServer, **extra: Any) -> Settings:
    """AUTH_MODE=jwt against the local JWKS, with this suite's issuer and audience."""
    return make_settings(
        auth_mode="jwt",
        auth_jwt_jwks_url=jwks.url,
        auth_jwt_issuer=ISSUER,
        auth_jwt_audience=AUDIENCE,
        **extra,
    )


def mock(upstream: respx.MockRouter) -> httpx.MockTransport:
    """The respx router as the upstream transport."""
    return httpx.MockTransport(upstream.async_handler)


@pytest.fixture(name="jwt_client")
async def fixture_jwt_client(
    make_settings: MakeSettings, upstream: respx.MockRouter, jwks: JwksServer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service in AUTH_MODE=jwt against the local JWKS."""
    app = create_app(jwks_settings(make_settings, jwks), transport=mock(upstream))
    async with serving(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestJwt:
    """AUTH_MODE=jwt with a JWKS of RS256 keys."""

    async def test_valid_token_mints(
        self, jwt_client: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        """A correctly signed, unexpired token for our audience is accepted."""
        token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
        response = await jwt_client.post(SESSIONS, json={}, headers=bearer(token))
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "bad_claims",
        [
            {"exp": int(time.time()) - 3600},
            {"iss": "https://evil.test/"},
            {"aud": "someone-else"},
            {"exp": None},
            {"sub": None},
        ],
    )
    async def test_bad_claims_are_401(
        self, jwt_client: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey, bad_claims: dict[str, Any]
    ) -> None:
        """Expired, wrong issuer, wrong audience, no exp or no sub: 401."""
        payload = {k: v for k, v in claims(**bad_claims).items() if v is not None}
        token = jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "k1"})
        assert_401(await jwt_client.post(SESSIONS, json={}, headers=bearer(token)))

    async def test_alg_none_is_401(self, jwt_client: httpx.AsyncClient) -> None:
        """An unsigned token (`alg: none`) is refused."""
        header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        token = f"{header}.{b64(json.dumps(claims()).encode())}."
        assert_401(await jwt_client.post(SESSIONS, json={}, headers=bearer(token)))

    async def test_algorithm_confusion_is_401(
        self, jwt_client: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        """An HS256 token 'signed' with the RSA public key as HMAC secret is refused."""
        public_pem = rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = (
            f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}."
            f"{b64(json.dumps(claims()).encode())}"
        )
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{b64(signature)}"
        assert_401(await jwt_client.post(SESSIONS, json={}, headers=bearer(token)))

    async def test_unknown_kid_is_401(self, jwt_client: httpx.AsyncClient) -> None:
        """A token from a key the JWKS does not publish is refused."""
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "k9"})
        assert_401(await jwt_client.post(SESSIONS, json={}, headers=bearer(token)))

    async def test_garbage_token_is_401(self, jwt_client: httpx.AsyncClient) -> None:
        """A token that is not a JWT at all is a 401, not a 500."""
        assert_401(await jwt_client.post(SESSIONS, json={}, headers=bearer("not.a.jwt")))

    async def test_unknown_kid_refetches_at_most_once_a_minute(
        self, jwt_client: httpx.AsyncClient, jwks: JwksServer
    ) -> None:
        """A burst of unknown-kid tokens does not hammer the JWKS endpoint."""
        before = jwks.fetches
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "k9"})
        for _ in range(5):
            assert_401(await jwt_client.post(SESSIONS, json={}, headers=bearer(token)))
        assert jwks.fetches - before <= 1


class TestJwtRotation:
    """Key rotation: a new kid is picked up by refetching the JWKS."""

    async def test_new_kid_is_fetched(
        self,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        jwks: JwksServer,
    ) -> None:
        """After the refresh interval, a token with a newly published kid is accepted."""
        settings = jwks_settings(make_settings, jwks, auth_jwt_jwks_refresh_seconds=0.0)
        app = create_app(settings, transport=mock(upstream))
        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(new_key.public_key(), as_dict=True)
        async with serving(app) as client:
            jwks.document = {"keys": [*jwks.document["keys"], {**jwk, "kid": "k2"}]}
            token = jwt.encode(claims(), new_key, algorithm="RS256", headers={"kid": "k2"})
            response = await client.post(SESSIONS, json={}, headers=bearer(token))
        assert response.status_code == 200


class TestJwksOutage:
    """The identity provider down at start-up must not lock valid tokens out once it is back."""

    async def test_tokens_verify_soon_after_jwks_recovers(
        self,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        jwks: JwksServer,
        rsa_key: rsa.RSAPrivateKey,
    ) -> None:
        """A failed fetch at start-up is retried after a short backoff, not after the refresh
        interval (an hour here: a lock-out that long would outlast the test)."""
        jwks.down = True
        settings = jwks_settings(make_settings, jwks, auth_jwt_jwks_refresh_seconds=3600)
        app = create_app(settings, transport=mock(upstream))
        token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
        async with serving(app) as client:
            assert_401(await client.post(SESSIONS, json={}, headers=bearer(token)))
            failed_fetches = jwks.fetches
            jwks.down = False
            async with asyncio.timeout(30):  # only a hang guard: the backoff starts at 0.5 s
                while (
                    await client.post(SESSIONS, json={}, headers=bearer(token))
                ).status_code != 200:
                    await asyncio.sleep(0.1)
        assert jwks.fetches > failed_fetches  # fetched again: the failure started no hour


class TestJwtSecret:
    """AUTH_MODE=jwt with AUTH_JWT_SECRET (HS256)."""

    async def test_hs256_token_mints_and_names_the_caller(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A token signed with the shared secret is accepted; `sub` is the identity."""
        client = await client_for(
            make_settings(
                auth_mode="jwt",
                auth_jwt_secret=SECRET,
                auth_jwt_issuer=ISSUER,
                auth_jwt_audience=AUDIENCE,
                policy={"tracing": "auto"},
            )
        )
        token = jwt.encode(claims(sub="alice"), SECRET, algorithm="HS256")
        response = await client.post(SESSIONS, json={}, headers=bearer(token))
        assert response.status_code == 200
        assert response.json()["tracing"]["metadata"] == {"caller": "alice"}

    async def test_rs256_token_is_refused_in_secret_mode(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        rsa_key: rsa.RSAPrivateKey,
    ) -> None:
        """Only the configured algorithm is accepted."""
        client = await client_for(
            make_settings(
                auth_mode="jwt",
                auth_jwt_secret=SECRET,
                auth_jwt_issuer=ISSUER,
                auth_jwt_audience=AUDIENCE,
            )
        )
        token = jwt.encode(claims(), rsa_key, algorithm="RS256")
        assert_401(await client.post(SESSIONS, json={}, headers=bearer(token)))

    def test_jwks_with_hs256_is_refused(self, make_settings: MakeSettings) -> None:
        """Configuring HS256 next to a JWKS (confusion-prone) stops start-up."""
        with pytest.raises(ValueError, match="AUTH_JWT_ALGORITHMS"):
            make_settings(
                auth_mode="jwt",
                auth_jwt_jwks_url="http://127.0.0.1:1/jwks",
                auth_jwt_issuer=ISSUER,
                auth_jwt_audience=AUDIENCE,
                auth_jwt_algorithms="RS256,HS256",
            )


class TestGateway:
    """AUTH_MODE=gateway: the identity header counts only from trusted proxies."""

    async def mint_from(
        self, make_settings: MakeSettings, upstream: respx.MockRouter, peer: str
    ) -> httpx.Response:
        settings = make_settings(
            auth_mode="gateway", auth_gateway_header="X-Auth-User", trusted_proxies="10.0.0.0/8"
        )
        app = create_app(settings, transport=httpx.MockTransport(upstream.async_handler))
        async with serving(app, peer=(peer, 40000)) as client:
            response: httpx.Response = await client.post(
                SESSIONS, json={}, headers={"X-Auth-User": "bob"}
            )
        return response

    async def test_trusted_peer_header_is_the_identity(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """From a trusted proxy, the header names the caller."""
        response = await self.mint_from(make_settings, upstream, "10.1.2.3")
        assert response.status_code == 200

    async def test_untrusted_peer_header_is_ignored(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """From any other peer the header is ignored: 401."""
        assert_401(await self.mint_from(make_settings, upstream, "192.0.2.7"))

    def test_gateway_needs_trusted_proxies(self, make_settings: MakeSettings) -> None:
        """Gateway mode without TRUSTED_PROXIES stops start-up."""
        with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
            make_settings(auth_mode="gateway", auth_gateway_header="X-Auth-User")

    async def test_two_identity_headers_are_401(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A client's own identity header beside the gateway's: refused, never guessed."""
        settings = make_settings(
            auth_mode="gateway", auth_gateway_header="X-Auth-User", trusted_proxies="10.0.0.0/8"
        )
        app = create_app(settings, transport=httpx.MockTransport(upstream.async_handler))
        async with serving(app, peer=("10.1.2.3", 40000)) as client:
            response = await client.post(
                SESSIONS, json={}, headers=[("X-Auth-User", "admin"), ("X-Auth-User", "bob")]
            )
        assert_401(response)


class TestModeRequired:
    """AUTH_MODE must be set explicitly."""

    @pytest.mark.parametrize("mode", [None, "basic"])
    def test_missing_or_unknown_mode_stops_start_up(self, mode: str | None) -> None:
        """No AUTH_MODE, or an unknown one, is a configuration error naming it."""
        from pydantic import ValidationError

        from service.config import Settings, describe

        values: dict[str, Any] = {"openai_api_key": "sk-x"}
        if mode:
            values["auth_mode"] = mode
        with pytest.raises(ValidationError) as caught:
            Settings.model_validate(values)
        assert "AUTH_MODE" in describe(caught.value)


def scope_from(peer: str, *forwarded: str) -> dict[str, Any]:
    """An ASGI scope from `peer` carrying one X-Forwarded-For line per argument."""
    return {
        "client": (peer, 40000),
        "headers": [(b"x-forwarded-for", line.encode()) for line in forwarded],
    }


class TestClientAddress:
    """The address per-IP limits count, behind TRUSTED_PROXIES."""

    PROXIES = (ip_network("10.0.0.0/8"),)

    def test_untrusted_peer_is_the_client(self) -> None:
        """A peer outside TRUSTED_PROXIES is the client, whatever it forwards."""
        assert client_ip(scope_from("198.51.100.7", "203.0.113.1"), self.PROXIES) == "198.51.100.7"

    def test_every_forwarded_line_counts_from_the_right(self) -> None:
        """A proxy appending its own line: the client's spoofed first line does not win."""
        scope = scope_from("10.1.2.3", "6.6.6.6", "203.0.113.9")
        assert client_ip(scope, self.PROXIES) == "203.0.113.9"

    def test_trusted_hops_are_skipped(self) -> None:
        """Hops inside TRUSTED_PROXIES are walked past to the first untrusted one."""
        scope = scope_from("10.1.2.3", "6.6.6.6, 203.0.113.9, 10.9.9.9")
        assert client_ip(scope, self.PROXIES) == "203.0.113.9"

    def test_a_hop_that_is_no_address_ends_the_walk(self) -> None:
        """A hop no proxy could have written is not believed; the last believed hop stands."""
        scope = scope_from("10.1.2.3", "203.0.113.9, evil, 10.9.9.9")
        assert client_ip(scope, self.PROXIES) == "10.9.9.9"


class TestIpv6Limits:
    """Per-IP limits count an IPv6 client by its /64."""

    async def test_addresses_in_one_64_share_a_limit(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Two addresses of one /64 share the per-IP limit; another /64 has its own."""
        settings = make_settings(rate_limit_per_ip="1/minute")
        statuses = []
        app = create_app(settings, transport=httpx.MockTransport(upstream.async_handler))
        async with running(app) as manager:
            for peer in ("2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:1:2::1"):
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app, client=(peer, 1)),
                    base_url="http://proxy.test",
                ) as client:
                    statuses.append((await client.post(SESSIONS, json={})).status_code)
        assert statuses == [200, 429, 200]
