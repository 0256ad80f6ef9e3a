"""Per-caller profiles from POLICY_PROFILES_FILE, chosen by key name, JWT claim or identity."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
import respx

from service.auth import new_api_key
from tests.conftest import ClientFor, MakeSettings, sent_body
from tests.paths import CLIENT_SECRETS, POLICY, SESSIONS

pytestmark = pytest.mark.anyio
PROFILES_TOML = """
[callers]
free-app = "free"

[profiles.free]
allowed_models = ["gpt-realtime-2.1-mini"]
default_model = "gpt-realtime-2.1-mini"
allowed_voices = ["marin", "cedar"]
default_voice = "marin"
token_ttl_seconds = 60
max_token_ttl_seconds = 60

[profiles.staff]
instructions_mode = "client"
"""
PROFILES_YAML = """
callers:
  free-app: free
profiles:
  free:
    allowed_models: [gpt-realtime-2.1-mini]
    default_model: gpt-realtime-2.1-mini
    allowed_voices: [marin, cedar]
    default_voice: marin
"""


def profiles_file(tmp_path: Path, text: str = PROFILES_TOML, suffix: str = ".toml") -> Path:
    path = tmp_path / f"profiles{suffix}"
    path.write_text(text)
    return path


class TestApiKeyProfiles:
    """Profiles chosen by API-key name."""

    async def test_free_key_gets_the_free_profile(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        tmp_path: Path,
        upstream: respx.MockRouter,
    ) -> None:
        """The free key mints gpt-realtime-2.1-mini with marin, and may not pick gpt-realtime-2."""
        free_key, free_entry = new_api_key("free-app")
        staff_key, staff_entry = new_api_key("staff-app")
        client = await client_for(
            make_settings(
                auth_mode="api_key",
                auth_api_keys=f"{free_entry},{staff_entry}",
                policy={"instructions_mode": "server", "instructions": "Server."},
                policy_profiles_file=profiles_file(tmp_path),
            )
        )
        free = {"X-API-Key": free_key}
        assert (await client.post(SESSIONS, json={}, headers=free)).status_code == 200
        assert sent_body(upstream)["session"]["model"] == "gpt-realtime-2.1-mini"
        assert sent_body(upstream)["session"]["audio"]["output"]["voice"] == "marin"
        refused = await client.post(SESSIONS, json={"model": "gpt-realtime-2"}, headers=free)
        assert refused.status_code == 403
        staff = await client.post(
            SESSIONS, json={"instructions": "Hi"}, headers={"X-API-Key": staff_key}
        )
        assert staff.status_code == 403  # staff-app is not assigned: the env policy applies

    async def test_policy_endpoint_shows_the_callers_profile(
        self, client_for: ClientFor, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """GET /v1/policy answers with the caller's effective profile."""
        key, entry = new_api_key("free-app")
        client = await client_for(
            make_settings(
                auth_mode="api_key",
                auth_api_keys=entry,
                policy_profiles_file=profiles_file(tmp_path),
            )
        )
        body = (await client.get(POLICY, headers={"X-API-Key": key})).json()
        assert body["profile"] == "free"
        assert body["models"] == {
            "allowed": ["gpt-realtime-2.1-mini"],
            "default": "gpt-realtime-2.1-mini",
        }
        assert body["token_ttl_seconds"] == {"default": 60, "max": 60}

    async def test_yaml_profiles_work_too(
        self, client_for: ClientFor, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """A .yaml profiles file is read like the TOML one."""
        key, entry = new_api_key("free-app")
        client = await client_for(
            make_settings(
                auth_mode="api_key",
                auth_api_keys=entry,
                policy_profiles_file=profiles_file(tmp_path, PROFILES_YAML, ".yaml"),
            )
        )
        body = (await client.get(POLICY, headers={"X-API-Key": key})).json()
        assert body["voices"]["default"] == "marin"


class TestClaimProfiles:
    """Profiles chosen by a JWT claim (AUTH_PROFILE_CLAIM)."""

    async def test_tier_claim_selects_profile(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        tmp_path: Path,
        upstream: respx.MockRouter,
    ) -> None:
        """`tier: staff` lets the caller set instructions the env policy forbids."""
        secret = "profile-test-secret-0123456789abcdef"
        client = await client_for(
            make_settings(
                auth_mode="jwt",
                auth_jwt_secret=secret,
                auth_jwt_issuer="iss",
                auth_jwt_audience="aud",
                auth_profile_claim="tier",
                policy={"instructions_mode": "server", "instructions": "Server."},
                policy_profiles_file=profiles_file(tmp_path),
            )
        )
        now = int(time.time())
        token = jwt.encode(
            {"sub": "s1", "iss": "iss", "aud": "aud", "exp": now + 60, "tier": "staff"},
            secret,
            algorithm="HS256",
        )
        response = await client.post(
            SESSIONS, json={"instructions": "Mine."}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        assert sent_body(upstream)["session"]["instructions"] == "Mine."


class TestValidation:
    """The profiles file is validated at start-up like the env policy."""

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("[profiles.free]\ndefault_voice = 'robot'\n", "free"),
            ("[profiles.free]\ntools_mode = 'sometimes'\n", "tools_mode"),
            ("[callers]\napp = 'gold'\n", "gold"),
            ("[profile.free]\n", "unknown keys"),
            ("not toml = = =", "cannot read"),
        ],
    )
    def test_bad_file_stops_start_up(
        self, make_settings: MakeSettings, tmp_path: Path, text: str, fragment: str
    ) -> None:
        """A contradictory or malformed profile names POLICY_PROFILES_FILE and the problem."""
        with pytest.raises(ValueError, match="POLICY_PROFILES_FILE") as caught:
            make_settings(policy_profiles_file=profiles_file(tmp_path, text))
        assert fragment in str(caught.value)

    def test_env_variable_names_the_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """POLICY_PROFILES_FILE from env is the file, not a policy rule."""
        from service.config import Settings

        monkeypatch.setenv("POLICY_PROFILES_FILE", str(profiles_file(tmp_path)))
        settings = Settings(_env_file=None, auth_mode="none", openai_api_key="sk-x")
        assert settings.profiles.for_caller("free-app")[0] == "free"


class TestGaKeysInProfiles:
    """The GA policy settings are profile keys like every other."""

    async def test_captions_profile(
        self, client_for: ClientFor, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """A profile limited to transcription in English mints captions and nothing else."""
        text = """
default = "captions"

[profiles.captions]
session_types = ["transcription"]
transcription_languages = ["en"]
"""
        client = await client_for(make_settings(policy_profiles_file=profiles_file(tmp_path, text)))
        ok = await client.post(
            CLIENT_SECRETS,
            json={
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"transcription": {"language": "en"}}},
                }
            },
        )
        assert ok.status_code == 200, ok.text
        assert (await client.post(CLIENT_SECRETS, json={})).status_code == 403
        view = (await client.get(POLICY)).json()
        assert view["session_types"] == ["transcription"]
        assert view["transcription_languages"] == ["en"]
