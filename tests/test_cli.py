"""`python -m service`: its commands, its help, and the start-up check of misspelt variables.

Each test runs the real command line in an empty working directory with only
the variables it names (plus PATH and HOME), so neither the shell running
the suite nor a stray `.env` can change what it sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.servers import STARTUP_GUARD, ServiceProcess

BASE = {"UPSTREAM_EMULATOR": "true", "AUTH_MODE": "none", "PORT": "0", "SECRETS_DIR": "/none"}
VALUE = "value-that-must-not-appear"
"""What the misspelt variables are set to: never printed, since a value may be a secret."""


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m service ARGS` in `cwd` with exactly `env` (and PATH, HOME); it must exit."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STARTUP_GUARD,
        check=False,
    )


class TestCommands:
    """The sub-commands, the help and the version."""

    def test_help_lists_commands_and_configuration_sources(self, tmp_path: Path) -> None:
        """`--help` names every command, serve as the default, and where settings come from."""
        result = run(tmp_path, "--help")
        assert result.returncode == 0, result.stderr
        text = result.stdout
        for command in ("serve", "emulator", "hash-key"):
            assert f"\n    {command} " in text, command
        assert "serve     run the service (the default)" in text
        for source in ("environment", "`.env` in the working directory", "SECRETS_DIR"):
            assert source in text, source
        assert "/run/secrets" in text
        assert "openai_api_key" in text
        assert "POLICY_PROFILES_FILE" in text

    def test_version_is_the_package_version(self, tmp_path: Path) -> None:
        """`--version` prints the installed distribution's version, from its metadata."""
        result = run(tmp_path, "--version")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["python", "-m", "service", version("realtime-token-proxy")]

    def test_hash_key_prints_a_key_and_its_entry(self, tmp_path: Path) -> None:
        """`hash-key NAME`: a caller key, and the AUTH_API_KEYS entry under NAME."""
        result = run(tmp_path, "hash-key", "partner")
        assert result.returncode == 0, result.stderr
        lines = dict(line.split(":", 1) for line in result.stdout.splitlines()[:2])
        assert lines["key"].strip().startswith("rtp_")
        assert lines["entry"].strip().startswith("partner:")

    def test_emulator_options_are_its_own(self, tmp_path: Path) -> None:
        """`emulator --help` shows the emulator's options (--host, --port), not serve's."""
        result = run(tmp_path, "emulator", "--help")
        assert result.returncode == 0, result.stderr
        assert "--host HOST" in result.stdout
        assert "--port PORT" in result.stdout

    def test_unknown_command_exits_2_listing_the_commands(self, tmp_path: Path) -> None:
        """A mistyped command is refused with status 2, naming the real ones."""
        result = run(tmp_path, "serv")
        assert result.returncode == 2
        assert "'serve', 'emulator', 'hash-key'" in result.stderr


class TestStrictEnvironment:
    """SERVICE_STRICT_ENV=true: a misspelt variable stops start-up (exit 2)."""

    def test_misspelt_variable_is_fatal(self, tmp_path: Path) -> None:
        """The variable is named with the setting it was meant to be; its value is not shown."""
        result = run(tmp_path, **BASE, SERVICE_STRICT_ENV="true", POLCY_ALLOWED_VOICES=VALUE)
        assert result.returncode == 2
        assert (
            "POLCY_ALLOWED_VOICES is not a setting of the service; "
            "did you mean `POLICY_ALLOWED_VOICES`?"
        ) in result.stderr
        assert VALUE not in result.stdout + result.stderr

    def test_misspelt_variable_in_env_file_is_fatal(self, tmp_path: Path) -> None:
        """A misspelling in `.env` (read by the service) is caught like one in the environment."""
        (tmp_path / ".env").write_text(f"RATE_LIMT_PER_IP={VALUE}\n")
        result = run(tmp_path, **BASE, SERVICE_STRICT_ENV="true")
        assert result.returncode == 2
        assert "RATE_LIMT_PER_IP" in result.stderr
        assert "did you mean `RATE_LIMIT_PER_IP`?" in result.stderr
        assert VALUE not in result.stdout + result.stderr

    def test_typo_behind_a_missing_variable_is_named(self, tmp_path: Path) -> None:
        """`AUTH_MOD` for `AUTH_MODE`: the missing variable and the typo, in one message."""
        env = {**BASE, "AUTH_MOD": "none"}
        del env["AUTH_MODE"]
        result = run(tmp_path, **env)
        assert result.returncode == 2
        assert "AUTH_MODE: is required (one of: api_key, jwt, gateway, none)" in result.stderr
        assert "AUTH_MOD is not a setting of the service; did you mean `AUTH_MODE`?" in (
            result.stderr
        )


class TestWarning:
    """Without SERVICE_STRICT_ENV the service starts, and says what it ignored."""

    @pytest.fixture(name="service")
    def fixture_service(self) -> ServiceProcess:
        """The service with a misspelt policy variable, ready."""
        service = ServiceProcess(
            {"AUTH_MODE": "none", "UPSTREAM_EMULATOR": "true", "POLCY_DEFAULT_VOICE": VALUE}
        )
        try:
            service.wait_ready()
        except BaseException:
            service.stop()
            raise
        return service

    def test_misspelt_variable_is_a_start_up_warning(self, service: ServiceProcess) -> None:
        """One warning line names the variable and the setting meant; the value is not logged."""
        assert service.stop() == 0
        output = service.log_path.read_text()
        warnings = [
            line
            for line in map(json.loads, (t for t in output.splitlines() if t.startswith("{")))
            if line.get("event") == "unknown_variable"
        ]
        assert [(w["variable"], w["did_you_mean"], w["level"]) for w in warnings] == [
            ("POLCY_DEFAULT_VOICE", "POLICY_DEFAULT_VOICE", "warning")
        ]
        assert VALUE not in output
