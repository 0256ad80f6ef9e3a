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

from service.config import (
    Settings,
    UnknownVariable,
    configured_names,
    describe,
    unknown_variables,
)
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

    def test_only_the_required_lines_are_active(self) -> None:
        """Copied as is, .env.example sets nothing but what has no default."""
        text = (ROOT / ".env.example").read_text()
        active = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M)
        assert active == ["OPENAI_API_KEY", "AUTH_MODE", "AUTH_API_KEYS"]

    def test_commented_values_are_the_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each `# NAME=value` line shows what the service uses with NAME unset.

        Loaded with and without the line, Settings must come out the same: a
        commented value that drifts from the code's default misleads whoever
        reads the file to learn what the service does.
        """
        for name in list(os.environ):
            if re.match(r"^[A-Z][A-Z0-9_]*$", name) and name not in ("PATH", "HOME"):
                monkeypatch.delenv(name)
        base = {"AUTH_MODE": "none", "OPENAI_API_KEY": "sk-example"}
        for key, value in base.items():
            monkeypatch.setenv(key, value)
        default = Settings(_env_file=None).model_dump()
        text = (ROOT / ".env.example").read_text()
        shown = re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.+)$", text, re.M)
        assert len(shown) > 40
        drifted = []
        for name, value in shown:
            monkeypatch.setenv(name, value)
            try:
                same = Settings(_env_file=None).model_dump() == default
            except ValidationError as exc:
                same, value = False, f"{value} (refused: {describe(exc)})"
            if not same:
                drifted.append(f"{name}={value}")
            monkeypatch.delenv(name)
        assert not drifted, f"commented values that are not the defaults: {drifted}"

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


class TestDevDefaults:
    """`make run`'s defaults (SERVICE_DEV_DEFAULTS) fill only what the shell and .env left unset."""

    def test_each_source_in_its_rank(self, tmp_path: Path) -> None:
        """Shell beats .env beats make run beats the code; an empty value counts as unset."""
        from service.config.sources import apply_dev_defaults

        dotenv = tmp_path / ".env"
        dotenv.write_text("AUTH_MODE=api_key\nDEMO_PAGE=\nWORKERS=3\n", encoding="utf-8")
        environ = {
            "SERVICE_DEV_DEFAULTS": "AUTH_MODE=none DEMO_PAGE=true WORKERS=1 LOG_FORMAT=console",
            "WORKERS": "2",
        }
        sources = apply_dev_defaults(environ, dotenv)
        assert sources["WORKERS"] == "environment"
        assert sources["AUTH_MODE"] == ".env"
        assert sources["DEMO_PAGE"] == "make run"
        assert sources["LOG_FORMAT"] == "make run"
        assert sources["API_DOCS"] == "default"
        assert environ == {"WORKERS": "2", "DEMO_PAGE": "true", "LOG_FORMAT": "console"}

    def test_without_make_run_nothing_is_added(self, tmp_path: Path) -> None:
        """`python -m service` alone: the environment is left as it was, sources still named."""
        from service.config.sources import apply_dev_defaults

        environ = {"AUTH_MODE": "none"}
        sources = apply_dev_defaults(environ, tmp_path / "absent.env")
        assert environ == {"AUTH_MODE": "none"}
        assert sources["AUTH_MODE"] == "environment"
        assert sources["DEMO_PAGE"] == "default"


class TestUnknownVariables:
    """A misspelt variable is named with the setting it was meant to be, never ignored."""

    @pytest.mark.parametrize(
        ("name", "meant"),
        [
            ("POLCY_ALLOWED_VOICES", "POLICY_ALLOWED_VOICES"),
            ("POLICY_ALLOWD_VOICES", "POLICY_ALLOWED_VOICES"),
            ("POLICY_LIVE_DEFAULT_MODLE", "POLICY_LIVE_DEFAULT_MODEL"),
            ("RATE_LIMT_PER_IP", "RATE_LIMIT_PER_IP"),
            ("AUTH_MOD", "AUTH_MODE"),
            ("METRIC_PORT", "METRICS_PORT"),
        ],
    )
    def test_misspelling_gets_the_nearest_name(self, name: str, meant: str) -> None:
        """The name is reported with the setting it is closest to."""
        assert unknown_variables([name]) == [UnknownVariable(name, meant)]
        assert str(unknown_variables([name])[0]).endswith(f"did you mean `{meant}`?")

    def test_every_setting_is_known(self) -> None:
        """No variable that Settings reads, nested policy ones included, is reported."""
        from service.policy.live import LivePolicy

        names = [name.upper() for name in Settings.model_fields if name != "policy"]
        names += [f"POLICY_{name.upper()}" for name in Policy.model_fields if name != "live"]
        names += [f"POLICY_LIVE_{name.upper()}" for name in LivePolicy.model_fields]
        assert unknown_variables(names) == []

    def test_a_service_prefix_is_reported_even_without_a_near_name(self) -> None:
        """`DEMO_ZZZZZZZZ` is nothing like a setting, but only the service uses DEMO_."""
        assert unknown_variables(["DEMO_ZZZZZZZZ"]) == [UnknownVariable("DEMO_ZZZZZZZZ", None)]

    def test_other_software_is_left_alone(self) -> None:
        """Variables of the shell, Python, Kubernetes and Docker are not reported."""
        others = [
            "PATH",
            "HOME",
            "HOSTNAME",
            "LOGNAME",
            "PYTHONPATH",
            "PYTHONUNBUFFERED",
            "PROMETHEUS_MULTIPROC_DIR",
            "SECRETS_DIR",
            "KUBERNETES_SERVICE_HOST",
            "REALTIME_TOKEN_PROXY_PORT_8000_TCP",
            "CORE_DUMP_DIR",
        ]
        assert unknown_variables(others) == []

    def test_names_come_from_the_env_file_too(self, tmp_path: Path) -> None:
        """`.env`'s names are read with the environment's; the file's values are not kept."""
        env_file = tmp_path / ".env"
        env_file.write_text("POLCY_DEFAULT_VOICE=cedar\nAUTH_MODE=none\n")
        names = configured_names({"REDIS_URLL": "redis://x"}, env_file)
        assert sorted(names) == ["AUTH_MODE", "POLCY_DEFAULT_VOICE", "REDIS_URLL"]
        assert [u.name for u in unknown_variables(names)] == ["POLCY_DEFAULT_VOICE", "REDIS_URLL"]

    def test_kubernetes_service_links_are_left_alone(self, tmp_path: Path) -> None:
        """A Service named `redis` or `auth` in the namespace does not stop a strict pod."""
        links = {
            "REDIS_SERVICE_HOST": "10.0.0.7",
            "REDIS_SERVICE_PORT": "6379",
            "REDIS_PORT": "tcp://10.0.0.7:6379",
            "REDIS_PORT_6379_TCP": "tcp://10.0.0.7:6379",
            "REDIS_PORT_6379_TCP_ADDR": "10.0.0.7",
            "AUTH_SERVICE_PORT_HTTP": "80",
        }
        names = configured_names({**links, "METRIC_PORT": "9100"}, tmp_path / ".env")
        assert names == ["METRIC_PORT"]


class TestMessages:
    """Start-up messages say what to do, naming each variable once."""

    @pytest.fixture(name="no_auth_mode", autouse=True)
    def fixture_no_auth_mode(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """AUTH_MODE unset, whatever the shell running the tests has."""
        monkeypatch.delenv("AUTH_MODE", raising=False)

    def test_missing_auth_mode_lists_its_values(self) -> None:
        """AUTH_MODE missing: the message lists the modes to choose from."""
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, upstream_emulator=True)
        assert "AUTH_MODE: is required (one of: api_key, jwt, gateway, none)" in describe(
            caught.value
        )

    def test_only_the_variables_at_fault_are_named(self) -> None:
        """A missing AUTH_MODE does not also blame WORKERS (computed after it)."""
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, upstream_emulator=True)
        assert "WORKERS" not in describe(caught.value)

    def test_a_typo_behind_a_missing_variable_is_named(self) -> None:
        """With `AUTH_MOD` set, the message names it and the setting it was meant to be."""
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, upstream_emulator=True)
        message = describe(caught.value, unknown_variables(["AUTH_MOD"]))
        assert "AUTH_MOD is not a setting of the service; did you mean `AUTH_MODE`?" in message

    def test_a_policy_problem_is_named_once(self) -> None:
        """A policy contradiction begins with its own variable, not `POLICY:`."""
        with pytest.raises(ValidationError) as caught:
            Settings(
                _env_file=None,
                auth_mode="none",
                upstream_emulator=True,
                policy={"speed_min": 1.4, "speed_max": 1.0},
            )
        assert "\n  POLICY_SPEED_MIN exceeds POLICY_SPEED_MAX" in describe(caught.value)
