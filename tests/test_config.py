"""Start-up configuration: a contradictory policy or a missing key stops the process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import NoDecode

from service.config import Settings, describe
from service.policy import Policy

ROOT = Path(__file__).resolve().parents[1]


class TestPolicyValidation:
    """Each contradiction is named by its variable."""

    @pytest.mark.parametrize(
        ("policy", "variable"),
        [
            (
                {"allowed_models": "gpt-realtime-2", "default_model": "gpt-realtime-2.1-mini"},
                "POLICY_DEFAULT_MODEL",
            ),
            ({"allowed_voices": "alloy", "default_voice": "ash"}, "POLICY_DEFAULT_VOICE"),
            ({"allowed_models": "gpt-9"}, "POLICY_ALLOWED_MODELS"),
            ({"tools": "[{not json"}, "POLICY_TOOLS"),
            ({"tools": '[{"name": "a", "paramz": {}}]'}, "POLICY_TOOLS"),
            ({"tools": '[{"name": "a"}, {"name": "a"}]'}, "POLICY_TOOLS"),
            ({"tools_mode": "some"}, "POLICY_TOOLS_MODE"),
            ({"instructions_mode": "whatever"}, "POLICY_INSTRUCTIONS_MODE"),
            ({"tracing": "on"}, "POLICY_TRACING"),
            ({"on_violation": "warn"}, "POLICY_ON_VIOLATION"),
            ({"token_ttl_seconds": 900}, "POLICY_TOKEN_TTL_SECONDS"),
            ({"max_output_tokens": "9000"}, "POLICY_MAX_OUTPUT_TOKENS"),
            ({"allowed_audio_formats": "mp3"}, "POLICY_ALLOWED_AUDIO_FORMATS"),
            ({"instructions_mode": "server"}, "POLICY_INSTRUCTIONS_MODE"),
        ],
    )
    def test_contradiction_names_variable(self, policy: dict[str, object], variable: str) -> None:
        """A bad policy fails validation with a message naming the variable."""
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, auth_mode="none", openai_api_key="sk-x", policy=policy)
        assert variable in describe(caught.value)

    @pytest.mark.parametrize(
        ("policy", "variable"),
        [
            ({"prompts": "pmpt_a"}, "POLICY_PROMPTS"),
            ({"prompt": "pmpt_a"}, "POLICY_PROMPT"),
            ({"prompts": ""}, "POLICY_PROMPTS"),
        ],
    )
    def test_prompt_objects_stop_start_up(self, policy: dict[str, object], variable: str) -> None:
        """A prompt-object setting stops start-up naming it and OpenAI's shutdown."""
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, auth_mode="none", openai_api_key="sk-x", policy=policy)
        message = describe(caught.value)
        assert f"{variable}: OpenAI shut down reusable prompt objects" in message
        assert "2026-11-30" in message

    def test_tools_from_file(self, tmp_path: Path) -> None:
        """`POLICY_TOOLS=@path` reads the tools from a JSON file."""
        path = tmp_path / "tools.json"
        path.write_text(json.dumps([{"type": "function", "name": "lookup"}]))
        assert Policy(tools=f"@{path}").tool_names == ("lookup",)

    def test_missing_tools_file_is_named(self, tmp_path: Path) -> None:
        """An unreadable tools file stops start-up naming POLICY_TOOLS."""
        with pytest.raises(ValidationError) as caught:
            Settings(
                _env_file=None, openai_api_key="sk-x", policy={"tools": f"@{tmp_path}/none.json"}
            )
        assert "POLICY_TOOLS" in describe(caught.value)


class TestEnvironment:
    """Reading the ops contract from real environment variables."""

    def test_env_lists_are_comma_separated(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """POLICY_* variables land in the nested policy, lists split on commas."""
        monkeypatch.setenv("POLICY_ALLOWED_VOICES", "marin, cedar")
        monkeypatch.setenv("POLICY_DEFAULT_VOICE", "cedar")
        monkeypatch.setenv("POLICY_MAX_OUTPUT_TOKENS", "1024")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        monkeypatch.setenv("AUTH_MODE", "none")
        settings = Settings(_env_file=None)
        assert settings.policy.allowed_voices == ("marin", "cedar")
        assert settings.policy.max_output_tokens == 1024

    def test_key_from_docker_secret_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The key can come from a Docker secret file named openai_api_key."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        (tmp_path / "openai_api_key").write_text("sk-from-secret-file\n")
        settings = Settings(_env_file=None, _secrets_dir=tmp_path, auth_mode="none")
        assert settings.openai_api_key is not None
        assert settings.openai_api_key.get_secret_value() == "sk-from-secret-file"

    def test_key_is_never_in_repr(self) -> None:
        """Printing settings cannot reveal the key."""
        settings = Settings(_env_file=None, auth_mode="none", openai_api_key="sk-very-secret-value")
        assert "sk-very-secret-value" not in repr(settings)


class TestCommandLine:
    """`python -m service` refuses to start without what it needs."""

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "POLICY_", "UPSTREAM_", "AUTH_"))
        }
        return subprocess.run(
            [sys.executable, "-m", "service"],
            env={**clean, **env, "SECRETS_DIR": "/nonexistent"},
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT / "tests",
            check=False,
        )

    def test_no_key_exits_naming_the_variable(self) -> None:
        """Without a key (and no emulator asked for) it exits non-zero naming OPENAI_API_KEY."""
        result = self.run(AUTH_MODE="none")
        assert result.returncode == 2
        assert "OPENAI_API_KEY" in result.stderr

    def test_every_missing_variable_in_one_message(self) -> None:
        """With nothing set, one run names both AUTH_MODE and OPENAI_API_KEY, then exits 2."""
        result = self.run()
        assert result.returncode == 2
        assert "AUTH_MODE: is required" in result.stderr
        assert "OPENAI_API_KEY: is required" in result.stderr

    def test_prompt_variable_exits_naming_it(self) -> None:
        """POLICY_PROMPTS in the environment: exit 2 naming it and the shutdown."""
        result = self.run(UPSTREAM_EMULATOR="true", AUTH_MODE="none", POLICY_PROMPTS="pmpt_a")
        assert result.returncode == 2
        assert "POLICY_PROMPTS: OpenAI shut down reusable prompt objects" in result.stderr

    def test_bad_policy_exits_naming_the_variable(self) -> None:
        """A contradictory policy stops start-up naming the variable, not echoing the key."""
        result = self.run(
            OPENAI_API_KEY="sk-do-not-print-me",
            AUTH_MODE="none",
            POLICY_DEFAULT_MODEL="gpt-realtime-2.1-mini",
            POLICY_ALLOWED_MODELS="gpt-realtime-2",
        )
        assert result.returncode == 2
        assert "POLICY_DEFAULT_MODEL" in result.stderr
        assert "sk-do-not-print-me" not in result.stderr + result.stdout


class TestEnvExample:
    """.env.example is the ops contract: complete and loadable."""

    def test_every_setting_is_documented(self) -> None:
        """Each Settings field and POLICY_* rule has a line in .env.example."""
        from service.policy import Policy
        from service.policy.live import LivePolicy

        text = (ROOT / ".env.example").read_text()
        names = [name.upper() for name in Settings.model_fields if name != "policy"]
        names += [f"POLICY_{name.upper()}" for name in Policy.model_fields if name != "live"]
        names += [f"POLICY_LIVE_{name.upper()}" for name in LivePolicy.model_fields]
        missing = [name for name in names if not re.search(rf"^(# )?{name}=", text, re.M)]
        assert not missing

    def test_example_loads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With the two secrets filled in, .env.example is a valid configuration."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
        monkeypatch.setenv("AUTH_API_KEYS", "app:" + "0" * 64)
        settings = Settings(_env_file=ROOT / ".env.example")
        assert settings.auth_mode == "api_key"
        assert settings.policy.token_ttl_seconds == 60


class TestKeyShape:
    """The key goes into an HTTP header verbatim, so it must be one clean token."""

    def test_key_with_a_newline_is_refused(self) -> None:
        """A key with whitespace inside stops start-up instead of corrupting the header."""
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, auth_mode="none", openai_api_key="sk-abc\r\nX-Evil: 1")
        message = describe(caught.value)
        assert "OPENAI_API_KEY" in message
        assert "X-Evil" not in message


CANNOT_BE_EMPTY = frozenset(
    {
        "AUTH_JWT_ALGORITHMS",
        "POLICY_ALLOWED_MODELS",
        "POLICY_ALLOWED_VOICES",
        "POLICY_ALLOWED_OUTPUT_MODALITIES",
        "POLICY_ALLOWED_AUDIO_FORMATS",
        "POLICY_ALLOWED_TURN_DETECTION",
    }
)
"""Lists whose emptiness contradicts the rest of the configuration."""


def env_lists() -> list[tuple[str, str, FieldInfo]]:
    """Every comma-separated (list or mapping) variable: (env name, field, its FieldInfo)."""
    from service.policy import Policy

    found = [
        (name.upper(), name, info)
        for name, info in Settings.model_fields.items()
        if NoDecode in info.metadata
    ]
    found += [
        (f"POLICY_{name.upper()}", name, info)
        for name, info in Policy.model_fields.items()
        if NoDecode in info.metadata
    ]
    return found


class TestEmptyLists:
    """`VAR=` in the environment is an empty list, never "unset" (the wider default)."""

    @pytest.mark.parametrize(
        ("variable", "field"),
        [(env, field) for env, field, _ in env_lists() if env not in CANNOT_BE_EMPTY],
    )
    def test_empty_list_variable_allows_nothing(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, field: str
    ) -> None:
        """Each list variable set empty in the environment is read as empty."""
        monkeypatch.setenv(variable, "")
        settings = Settings(_env_file=None, auth_mode="none", upstream_emulator=True)
        holder = settings.policy if variable.startswith("POLICY_") else settings
        assert getattr(holder, field) in ((), {}), f"{variable}= must mean none"

    @pytest.mark.parametrize("variable", sorted(CANNOT_BE_EMPTY))
    def test_list_that_cannot_be_empty_stops_start_up(
        self, monkeypatch: pytest.MonkeyPatch, variable: str
    ) -> None:
        """A list the service cannot work without, set empty, stops start-up naming it."""
        monkeypatch.setenv(variable, "")
        auth: dict[str, Any] = {"auth_mode": "none"}
        if "JWT" in variable:
            auth = {"auth_mode": "jwt", "auth_jwt_secret": "s" * 32}
        with pytest.raises(ValidationError) as refused:
            Settings(
                _env_file=None,
                upstream_emulator=True,
                auth_jwt_issuer="https://issuer.test",
                auth_jwt_audience="rtp",
                **auth,
            )
        assert variable in describe(refused.value)

    def test_empty_scalar_means_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """`REDIS_URL=` and `POLICY_INSTRUCTIONS=` are unset: the default applies."""
        monkeypatch.setenv("REDIS_URL", "")
        monkeypatch.setenv("POLICY_INSTRUCTIONS", "")
        settings = Settings(_env_file=None, auth_mode="none", upstream_emulator=True)
        assert settings.redis_url is None
        assert settings.policy.instructions is None

    def test_empty_transcription_models_refuse_transcription(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """POLICY_ALLOWED_TRANSCRIPTION_MODELS= disables transcription, as documented."""
        monkeypatch.setenv("POLICY_ALLOWED_TRANSCRIPTION_MODELS", "")
        settings = Settings(_env_file=None, auth_mode="none", upstream_emulator=True)
        assert settings.policy.allowed_transcription_models == ()
